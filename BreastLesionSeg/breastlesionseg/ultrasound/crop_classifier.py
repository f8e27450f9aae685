"""The lesion-crop malignancy classifier of an ultrasound model: its input, its weights and its logit.

A second opinion on malignancy beside the segmentation network's own head (the U2NET-Lite paper pairs its
segmentation network with a separate ResNeXt 32x4d classifier): the lesion's bounding box, grown by
``margin`` of its height / width on every side, is letterboxed to ``size_px`` together with the lesion mask
(channels: intensity 0..1, mask 0/1) and classified by :class:`~breastlesionseg.nn.resnext_classifier2d.ResNeXtClassifier2D`.
It is trained on the lesions the fold's network predicts (:mod:`.train_crop_classifier`) and applied to the
predicted one; with ``mirror`` its logit is averaged with the mirror image's.

A model has an ensemble of them, one per margin (their logits averaged). A model card names them in its
``crop_classifier`` field::

    {"members": [{"config": {...}, "margin": 1.0, "size_px": 64, "weights_file": "crop_classifier.pt",
                  "weights_sha256": "...", "mirror": false},
                 {..., "margin": 2.0, "weights_file": "crop_classifier_1.pt", ...}]}

A field holding a single member's keys (no ``members``) is a one-member ensemble; a member without
``mirror`` averages with the mirror image (as the first, single classifiers did).

The weights are a plain ``state_dict`` loaded with ``weights_only=True`` after their sha256 is checked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelError
from ..imaging2d.lesion_crops import crop
from ..imaging2d.letterbox import Letterbox
from .lesion_zoom import zoom_box

#: the card's ``crop_classifier`` keys
SPEC_KEYS: tuple[str, ...] = ("config", "margin", "size_px", "weights_file", "weights_sha256")
#: the weights file of the ensemble's member 0 in a model folder (member m: ``crop_classifier_<m>.pt``)
CLASSIFIER_WEIGHTS_FILE = "crop_classifier.pt"
#: most members an ensemble may have
MAX_MEMBERS = 8


def classifier_input(unit_pixels: np.ndarray, mask: np.ndarray, margin: float, size_px: int) -> torch.Tensor | None:
    """The (2, S, S) classifier input of a lesion, or None when ``mask`` is empty.

    Args:
        unit_pixels: (H, W) intensities scaled to 0..1 (``imaging2d.intensity.scale_to_unit``).
        mask: (H, W) lesion mask (bool or 0/1).
        margin: growth of the lesion's bounding box per side, as a fraction of its height / width.
        size_px: side of the square input.
    """
    box = zoom_box(np.asarray(mask, dtype=bool), margin)
    if box is None:
        return None
    pixels, lesion = crop(unit_pixels, box), crop(np.asarray(mask, dtype=np.float32), box)
    letterbox = Letterbox.fit(pixels.shape[0], pixels.shape[1], size_px)
    image = letterbox.apply(pixels).reshape(1, size_px, size_px)
    outline = (letterbox.apply(lesion, mode="nearest").reshape(1, size_px, size_px) > 0.5).float()
    return torch.cat([image, outline])


def network_logits(network: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """(N,) float32 logits of an (N, 2, S, S) batch (fed channels-last, as the classifier is stored)."""
    return network(inputs.contiguous(memory_format=torch.channels_last)).float()


def mirrored_mean_logits(network: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """(N,) logits of an (N, 2, S, S) batch: the mean over each input and its left-right mirror image."""
    logits = network_logits(network, torch.cat([inputs, torch.flip(inputs, dims=[-1])]))
    return (logits[: len(inputs)] + logits[len(inputs):]) / 2


@dataclass
class CropClassifier:
    """A loaded crop classifier (one member of a model's ensemble).

    Attributes:
        network: the classifier (eval mode, CPU, channels-last; batch norms folded: inference only).
        margin: box growth per side (fraction of the lesion box).
        size_px: input side.
        mirror: average the logit with the mirror image's.
    """

    network: torch.nn.Module
    margin: float
    size_px: int
    mirror: bool = True

    def logit(self, unit_pixels: np.ndarray, mask: np.ndarray) -> float | None:
        """Malignancy logit of the lesion ``mask`` of an image (with ``mirror``, the mean with its mirror image's);
        None when the mask is empty."""
        inputs = classifier_input(unit_pixels, mask, self.margin, self.size_px)
        if inputs is None:
            return None
        with torch.inference_mode():
            logits = mirrored_mean_logits if self.mirror else network_logits
            return float(logits(self.network, inputs[None])[0])


@dataclass
class CropClassifierEnsemble:
    """The loaded crop classifiers of a model (``members``, in the card's order); their logits are averaged."""

    members: list[CropClassifier]

    def logit(self, unit_pixels: np.ndarray, mask: np.ndarray) -> float | None:
        """Malignancy logit of the lesion ``mask`` of an image: the mean of the members' logits (None when the mask
        is empty)."""
        logits = [member.logit(unit_pixels, mask) for member in self.members]
        return None if logits[0] is None else float(np.mean(logits))


def member_weights_file(member: int) -> str:
    """The weights file name of an ensemble member in a model folder."""
    return CLASSIFIER_WEIGHTS_FILE if member == 0 else f"{Path(CLASSIFIER_WEIGHTS_FILE).stem}_{member}.pt"


def member_specs(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The member entries of a card's ``crop_classifier`` field (a field without ``members`` is one member)."""
    return list(spec["members"]) if "members" in spec else [spec]


def classifier_spec(run_config: dict[str, Any], weights_sha256: str, member: int = 0) -> dict[str, Any]:
    """A member entry of the card's ``crop_classifier`` field (its ``train_config.json`` and weights' sha256;
    ``mirror`` of :data:`~breastlesionseg.ultrasound.config.CROP_CLASSIFIER_MIRROR`)."""
    from .config import CROP_CLASSIFIER_MIRROR

    return {"config": run_config["network"], "margin": float(run_config["margin"]), "size_px": int(run_config["size_px"]),
            "weights_file": member_weights_file(member), "weights_sha256": weights_sha256, "mirror": CROP_CLASSIFIER_MIRROR}


def uses_mirror(spec: dict[str, Any]) -> bool:
    """Whether a member entry averages its logit with the mirror image's (True when it does not say)."""
    return bool(spec.get("mirror", True))


def validate_spec(spec: dict[str, Any], model_id: str) -> None:
    """Check a card's ``crop_classifier`` field (raises ModelError naming the model and the problem)."""
    if "members" in spec:
        members = spec["members"]
        if set(spec) != {"members"} or not isinstance(members, list) or not 1 <= len(members) <= MAX_MEMBERS:
            raise ModelError(f"model {model_id}: crop_classifier must be {{\"members\": [1 to {MAX_MEMBERS} entries]}}; "
                             f"got keys {sorted(spec)}")
        if not all(isinstance(member, dict) and "members" not in member for member in members):
            raise ModelError(f"model {model_id}: each crop_classifier member must be a classifier entry")
        if len({member.get("weights_file") for member in members}) != len(members):
            raise ModelError(f"model {model_id}: crop_classifier members must have their own weights files")
    for member in member_specs(spec):
        _validate_member(member, model_id)


def _validate_member(spec: dict[str, Any], model_id: str) -> None:
    from ..nn.config2d import ResNeXtClassifier2DConfig

    missing = [key for key in SPEC_KEYS if key not in spec]
    if missing:
        raise ModelError(f"model {model_id}: crop_classifier lacks {missing}")
    try:
        ResNeXtClassifier2DConfig.from_dict(spec["config"])
    except Exception as exc:
        raise ModelError(f"model {model_id}: invalid crop_classifier config: {exc}") from exc
    margin, size_px = spec["margin"], spec["size_px"]
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and 0 <= margin <= 5):
        raise ModelError(f"model {model_id}: crop_classifier margin must be in [0, 5]; got {margin!r}")
    if not isinstance(spec.get("mirror", True), bool):
        raise ModelError(f"model {model_id}: crop_classifier mirror must be true or false; got {spec['mirror']!r}")
    if not (isinstance(size_px, int) and 16 <= size_px <= 512):
        raise ModelError(f"model {model_id}: crop_classifier size_px must be an integer in [16, 512]; got {size_px!r}")
    if Path(spec["weights_file"]).name != spec["weights_file"]:
        raise ModelError(f"model {model_id}: crop_classifier weights_file must be a file name in the model folder; "
                         f"got {spec['weights_file']!r}")


def load_crop_classifiers(weights: list[Path], spec: dict[str, Any], model_id: str) -> CropClassifierEnsemble:
    """Load the ensemble of a card's ``crop_classifier`` field, member ``m`` from ``weights[m]`` (each
    sha256-verified against its entry; raises ModelError as :func:`load_crop_classifier`, or when the number
    of files is not the number of members)."""
    validate_spec(spec, model_id)
    members = member_specs(spec)
    if len(weights) != len(members):
        raise ModelError(f"model {model_id}: {len(members)} crop classifiers in the card, {len(weights)} weights files")
    return CropClassifierEnsemble([load_crop_classifier(path, member, model_id) for path, member in zip(weights, members)])


def load_crop_classifier(weights: str | Path, spec: dict[str, Any], model_id: str) -> CropClassifier:
    """Load one member of a card's ``crop_classifier`` field from ``weights`` (sha256-verified against the entry).

    Args:
        weights: the weights file (``model folder / spec["weights_file"]``, or a training run's best weights).
        spec: the member's entry of the card's ``crop_classifier`` field.
        model_id: the card's model id (for messages).

    Raises:
        ModelError: invalid field, missing file, sha256 mismatch or weights not fitting the network.
    """
    from ..nn.batch_norm_folding import fold_batch_norms_2d
    from ..nn.config2d import ResNeXtClassifier2DConfig
    from ..nn.model_paths import sha256_file
    from ..nn.resnext_classifier2d import ResNeXtClassifier2D

    _validate_member(spec, model_id)
    weights = Path(weights)
    if not weights.is_file():
        raise ModelError(f"model {model_id}: crop-classifier weights '{weights}' are missing")
    digest = sha256_file(weights)
    if digest != spec["weights_sha256"]:
        raise ModelError(f"model {model_id}: sha256 of '{weights}' is {digest}, the card says {spec['weights_sha256']}")
    network = ResNeXtClassifier2D(ResNeXtClassifier2DConfig.from_dict(spec["config"]))
    try:
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except (RuntimeError, KeyError) as exc:
        raise ModelError(f"model {model_id}: '{weights}' does not fit the crop classifier: {exc}") from exc
    size = int(spec["size_px"])
    network = fold_batch_norms_2d(network.eval(), size)
    return CropClassifier(network.to(memory_format=torch.channels_last), float(spec["margin"]), size, uses_mirror(spec))
