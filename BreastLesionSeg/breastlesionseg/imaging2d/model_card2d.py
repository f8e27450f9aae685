"""Model card of a 2D lesion model (ultrasound, mammography) and safe loading of its weights.

A 2D model folder holds ``model_card.json`` and the weights file it names (a plain ``state_dict``);
loading checks the sha256 before deserialising and uses ``torch.load(..., weights_only=True)``. Model
folders are found like the MRI models (``nn.model_paths.resolve_model``: a path, or an id in
``$BREASTLESIONSEG_MODELS``, ``~/.breastlesionseg/models`` or the repository's ``models/``). The card
says ``"kind": "lesion2d"`` and its modality, so it is never mistaken for a 3D MRI card.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..io.atomic import write_text_atomic
from ..nn.limitations import is_limitation_list
from ..nn.model_paths import CARD_FILE

WEIGHTS_FILE = "weights.pt"
CARD_KIND = "lesion2d"
MODALITIES: tuple[str, ...] = ("ultrasound", "mammography")
RESEARCH_USE_TEXT = (
    "For research use only. Not a medical device; not for diagnosis or treatment decisions. "
    "Every result must be reviewed and corrected by a qualified reader."
)
log = logging.getLogger(__name__)
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class ModelCard2D:
    """Everything needed to use a trained 2D lesion model correctly.

    Attributes:
        model_id: folder-safe identifier, e.g. ``us-attunet-busbra``.
        modality: ``"ultrasound"`` or ``"mammography"``.
        arch: 2D architecture name (``nn.config2d.CONFIG2D_CLASSES``).
        config: network config fields.
        input_size_px: side of the square letterboxed network input.
        intensity: intensity scaling (``"percentile_0.5_99.5"``: see ``imaging2d.intensity``).
        threshold: lesion-probability threshold of the mask.
        lesion_present_threshold: threshold on the lesion-present probability; below it the mask is emptied.
        test_time_flip: average the lesion-probability map and the malignancy probability with those of the
            left-right mirrored image (one more image in the same forward batch); the lesion-present
            probability is the image's own (its threshold is calibrated on single images).
        lesion_zoom_margin: a second pass on the first pass's lesion: its bounding box grown by this fraction
            of its height / width on every side is run again at ``input_size_px`` (once, without the
            mirror image of ``test_time_flip``); inside the box the two
            lesion maps are averaged, and the malignancy is the mean of both passes' logits (0: one pass).
        malignancy_model: ultrasound: the logistic model that combines the network's malignancy probability
            with the predicted lesion's descriptors (``ultrasound.malignancy_model``; empty: the network alone).
        crop_classifier: ultrasound: the lesion-crop malignancy classifiers, an ensemble (``ultrasound.crop_classifier``:
            ``{"members": [...]}``, each with its network config, crop margin and size, mirror setting, weights
            file and its sha256; empty: none).
        training_data: what the weights were trained on, in words.
        limitations: known limitations, measured (one sentence each, with its figures): where the model is known to
            do worse. Repeated in every result and shown in the Slicer panel's model summary.
        dataset_citation: the dataset's citation (required by its licence).
        split: which images trained / validated / tested this model.
        cv_metrics: cross-validation / test metrics (free-form numbers).
        trained_from_scratch: true when no pretrained (e.g. ImageNet) weights were used.
        weights_file, weights_sha256: the weights file and its hex sha256.
        training_command: the command that reproduces the weights.
        research_use_only, research_use_text: always research use.
        created: ISO-8601 UTC time.
        kind: ``"lesion2d"``.
    """

    model_id: str
    modality: str
    arch: str
    config: dict[str, Any]
    input_size_px: int
    intensity: str = "percentile_0.5_99.5"
    threshold: float = 0.5
    lesion_present_threshold: float = 0.5
    test_time_flip: bool = False
    lesion_zoom_margin: float = 0.0
    malignancy_model: dict[str, Any] = field(default_factory=dict)
    crop_classifier: dict[str, Any] = field(default_factory=dict)
    training_data: str = ""
    limitations: list[str] = field(default_factory=list)
    dataset_citation: str = ""
    split: dict[str, Any] = field(default_factory=dict)
    cv_metrics: dict[str, Any] = field(default_factory=dict)
    trained_from_scratch: bool = True
    weights_file: str = WEIGHTS_FILE
    weights_sha256: str = ""
    training_command: str = ""
    research_use_only: bool = True
    research_use_text: str = RESEARCH_USE_TEXT
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())
    kind: str = CARD_KIND

    def __post_init__(self) -> None:
        from ..nn.config2d import config2d_from_dict

        if not _ID_RE.match(self.model_id):
            raise ModelError(f"model_id {self.model_id!r} must be 1-128 letters, digits, '.', '_' or '-'")
        if self.modality not in MODALITIES:
            raise ModelError(f"model {self.model_id}: modality must be one of {MODALITIES}; got {self.modality!r}")
        if self.kind != CARD_KIND:
            raise ModelError(f"model {self.model_id}: card kind {self.kind!r} is not a 2D lesion model card")
        try:
            config2d_from_dict(self.arch, self.config)
        except Exception as exc:
            raise ModelError(f"model {self.model_id}: invalid network config: {exc}") from exc
        if not 0.0 < self.threshold < 1.0 or not 0.0 < self.lesion_present_threshold < 1.0:
            raise ModelError(f"model {self.model_id}: thresholds must be in (0, 1)")
        if not 0.0 <= self.lesion_zoom_margin <= 5.0:
            raise ModelError(f"model {self.model_id}: lesion_zoom_margin must be in [0, 5]; got {self.lesion_zoom_margin}")
        if not is_limitation_list(self.limitations):
            raise ModelError(f"model {self.model_id}: limitations must be a list of non-empty texts; "
                             f"got {self.limitations!r}")
        if self.weights_sha256 and not _SHA_RE.match(self.weights_sha256):
            raise ModelError(f"model {self.model_id}: weights_sha256 is not a hex sha256")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return dataclasses.asdict(self)

    def write(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write ``folder/model_card.json`` atomically."""
        return write_text_atomic(Path(folder) / CARD_FILE, json.dumps(self.to_dict(), indent=2) + "\n", overwrite=overwrite)

    @classmethod
    def read(cls, folder: str | Path) -> "ModelCard2D":
        """Read and validate ``folder/model_card.json`` (raises ModelError naming the file)."""
        path = Path(folder) / CARD_FILE
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read model card '{path}': {exc}") from exc
        if not isinstance(values, dict) or values.get("kind") != CARD_KIND:
            raise ModelError(f"'{path}' is not a 2D lesion model card (kind {CARD_KIND!r})")
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in values.items() if k in known})
        except TypeError as exc:
            raise ModelError(f"model card '{path}' lacks a field: {exc}") from exc


def load_model_2d(name_or_path: str | Path):
    """(network in eval mode, card) of a 2D model folder or id; sha256 verified before loading.

    Raises:
        ModelError: not found, not a 2D card, sha256 mismatch or weights not matching the network.
    """
    import torch

    from ..nn.factory2d import build_network_2d
    from ..nn.model_paths import resolve_model, sha256_file
    from ..nn.registry import check_shipped_weights

    folder = resolve_model(name_or_path)
    card = ModelCard2D.read(folder)
    weights = folder / card.weights_file
    if not weights.is_file():
        raise ModelError(f"model {card.model_id}: weights file '{weights}' is missing")
    if not card.weights_sha256:
        raise ModelError(f"model card '{folder / CARD_FILE}' has no weights_sha256; refusing unverified weights")
    digest = sha256_file(weights)
    if digest != card.weights_sha256:
        raise ModelError(f"model {card.model_id}: sha256 of '{weights}' is {digest}, the card says {card.weights_sha256}")
    by_id = not Path(str(name_or_path)).expanduser().exists()
    check_shipped_weights(card.model_id, digest, weights, refuse=by_id)
    network = build_network_2d(card.arch, card.config)
    try:
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except (RuntimeError, KeyError) as exc:
        raise ModelError(f"model {card.model_id}: weights do not fit the {card.arch} network: {exc}") from exc
    return network.eval(), card


def list_models_2d(modality: str | None = None) -> list[ModelCard2D]:
    """Cards of the valid 2D models in the model search path, optionally of one modality.

    Args:
        modality: ``"ultrasound"``, ``"mammography"`` or None for both.

    Raises:
        ValueError: unknown ``modality``.
    """
    from ..nn.model_paths import model_search_path

    if modality is not None and modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES} or None; got {modality!r}")
    cards: dict[str, ModelCard2D] = {}
    for root in model_search_path():
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if (p / CARD_FILE).is_file()):
            if card_kind(folder) != CARD_KIND:
                continue
            try:
                card = ModelCard2D.read(folder)
            except ModelError as exc:
                log.warning("skipping 2D model folder %s: %s", folder, exc)
                continue
            if modality is None or card.modality == modality:
                cards.setdefault(card.model_id, card)
    return list(cards.values())


def card_kind(folder: str | Path) -> str | None:
    """The ``kind`` field of ``folder/model_card.json`` (None when absent or unreadable)."""
    try:
        values = json.loads((Path(folder) / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return values.get("kind") if isinstance(values, dict) else None


def _same_tensors(path: Path, state_dict: dict) -> bool:
    """Whether the weights file ``path`` holds exactly ``state_dict``'s tensors (False when absent/unreadable)."""
    import torch

    if not path.is_file():
        return False
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError):
        return False
    return (isinstance(stored, dict) and stored.keys() == state_dict.keys()
            and all(torch.equal(stored[k], torch.as_tensor(v)) for k, v in state_dict.items()))


def save_model_2d(state_dict: dict, card: ModelCard2D, folder: str | Path, overwrite: bool = False) -> Path:
    """Write weights + card (sha256 filled in) into ``folder``; returns the folder."""
    import torch

    from ..io.atomic import write_atomic
    from ..nn.model_paths import sha256_file

    folder = Path(folder)
    weights = folder / card.weights_file
    if not (overwrite and _same_tensors(weights, state_dict)):  # torch.save bytes differ run to run: keep the file
        write_atomic(weights, lambda tmp: torch.save(state_dict, tmp), overwrite=overwrite)
    card.weights_sha256 = sha256_file(weights)
    card.write(folder, overwrite=overwrite)
    return folder
