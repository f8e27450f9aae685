"""The lesion-crop malignancy classifier of an ultrasound model: its input, its weights and its logit.

A second opinion on malignancy beside the segmentation network's own head (the U2NET-Lite paper pairs its
segmentation network with a separate ResNeXt 32x4d classifier): the lesion's bounding box, grown by
``margin`` of its height / width on every side, is letterboxed to ``size_px`` together with the lesion mask
(channels: intensity 0..1, mask 0/1) and classified by :class:`~breastlesionseg.nn.resnext_classifier2d.ResNeXtClassifier2D`.
It is trained on the expert outlines (:mod:`.train_crop_classifier`) and applied to the predicted one.

A model card names it in its ``crop_classifier`` field::

    {"config": {...}, "margin": 1.0, "size_px": 64, "weights_file": "crop_classifier.pt", "weights_sha256": "..."}

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
#: the classifier's weights file in a model folder
CLASSIFIER_WEIGHTS_FILE = "crop_classifier.pt"


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


def mirrored_mean_logits(network: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """(N,) logits of an (N, 2, S, S) batch: the mean over each input and its left-right mirror image."""
    batch = torch.cat([inputs, torch.flip(inputs, dims=[-1])]).contiguous(memory_format=torch.channels_last)
    logits = network(batch).float()
    return (logits[: len(inputs)] + logits[len(inputs):]) / 2


@dataclass
class CropClassifier:
    """A loaded crop classifier.

    Attributes:
        network: the classifier (eval mode, CPU, channels-last).
        margin: box growth per side (fraction of the lesion box).
        size_px: input side.
    """

    network: torch.nn.Module
    margin: float
    size_px: int

    def logit(self, unit_pixels: np.ndarray, mask: np.ndarray) -> float | None:
        """Malignancy logit of the lesion ``mask`` of an image (None when the mask is empty)."""
        inputs = classifier_input(unit_pixels, mask, self.margin, self.size_px)
        if inputs is None:
            return None
        with torch.inference_mode():
            return float(mirrored_mean_logits(self.network, inputs[None])[0])


def classifier_spec(run_config: dict[str, Any], weights_sha256: str) -> dict[str, Any]:
    """The card's ``crop_classifier`` field of a trained classifier (its ``train_config.json`` and weights' sha256)."""
    return {"config": run_config["network"], "margin": float(run_config["margin"]), "size_px": int(run_config["size_px"]),
            "weights_file": CLASSIFIER_WEIGHTS_FILE, "weights_sha256": weights_sha256}


def validate_spec(spec: dict[str, Any], model_id: str) -> None:
    """Check a card's ``crop_classifier`` field (raises ModelError naming the model and the problem)."""
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
    if not (isinstance(size_px, int) and 16 <= size_px <= 512):
        raise ModelError(f"model {model_id}: crop_classifier size_px must be an integer in [16, 512]; got {size_px!r}")
    if Path(spec["weights_file"]).name != spec["weights_file"]:
        raise ModelError(f"model {model_id}: crop_classifier weights_file must be a file name in the model folder; "
                         f"got {spec['weights_file']!r}")


def load_crop_classifier(weights: str | Path, spec: dict[str, Any], model_id: str) -> CropClassifier:
    """Load the classifier of a card's ``crop_classifier`` field from ``weights`` (sha256-verified against the field).

    Args:
        weights: the weights file (``model folder / spec["weights_file"]``, or a training run's best weights).
        spec: the card's ``crop_classifier`` field.
        model_id: the card's model id (for messages).

    Raises:
        ModelError: invalid field, missing file, sha256 mismatch or weights not fitting the network.
    """
    from ..nn.config2d import ResNeXtClassifier2DConfig
    from ..nn.model_paths import sha256_file
    from ..nn.resnext_classifier2d import ResNeXtClassifier2D

    validate_spec(spec, model_id)
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
    return CropClassifier(network.eval().to(memory_format=torch.channels_last), float(spec["margin"]), int(spec["size_px"]))
