"""Run a mammography model on one image: lesion probability map and mask at the input's exact size.

Public entry point for the CLI and the Slicer module::

    from breastlesionseg.mammography.predict import load_mammography_model, predict_image
    model = load_mammography_model()               # the shipped demo model, or a folder / id
    result = predict_image("mammogram.dcm", model)  # or an (H, W) array (+ spacing_mm), or an Image2D
    result.mask, result.lesion_probability_map, result.area_mm2
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelError
from ..imaging2d.image2d import Image2D
from ..imaging2d.model_card2d import ModelCard2D, load_model_2d
from ..imaging2d.image_io import as_image2d
from .config import DEFAULT_MAMMOGRAPHY_MODEL
from .training_data import network_input


@dataclass
class MammographyModel:
    """A loaded mammography model: ``network`` (eval mode, CPU) and its ``card``."""

    network: torch.nn.Module
    card: ModelCard2D

    @property
    def model_id(self) -> str:
        """The card's model id."""
        return self.card.model_id


def load_mammography_model(name_or_path: str | Path | None = None) -> MammographyModel:
    """Load a 2D mammography model folder or id (default: the shipped demo); sha256 checked, weights_only.

    Raises:
        ModelError: not found, not a mammography card, checksum or architecture mismatch.
    """
    network, card = load_model_2d(name_or_path or DEFAULT_MAMMOGRAPHY_MODEL)
    if card.modality != "mammography":
        raise ModelError(f"model {card.model_id} is a {card.modality} model, not a mammography model")
    return MammographyModel(network, card)


@dataclass
class MammographyResult:
    """Result of one image.

    Attributes:
        mask: (H, W) uint8, 1 = lesion, exactly the input's size.
        lesion_probability_map: (H, W) float32 per-pixel lesion probability.
        area_px: lesion area in pixels.
        area_mm2: lesion area in mm2, or ``None`` when the image has no pixel spacing.
        spacing_mm: (row_mm, column_mm) or ``None``.
        spacing_source: ``PixelSpacing``, ``ImagerPixelSpacing``, ``given`` or ``none``.
        model_id: the model that produced it.
        source: input file, when read from one.
        frame_index: frame of a multi-frame input.
        model_limitations: the model card's known limitations (texts), repeated with every result.
    """

    mask: np.ndarray
    lesion_probability_map: np.ndarray
    area_px: int
    area_mm2: float | None
    spacing_mm: tuple[float, float] | None
    spacing_source: str
    model_id: str
    source: str | None = None
    frame_index: int = 0
    model_limitations: tuple[str, ...] = ()

    @property
    def lesion_found(self) -> bool:
        """True when the mask is not empty."""
        return self.area_px > 0

    def to_json_dict(self) -> dict[str, Any]:
        """The fields of ``result.json`` (no arrays)."""
        return {
            "source": self.source, "frame_index": self.frame_index, "model_id": self.model_id,
            "modality": "mammography", "lesion_found": self.lesion_found, "lesion_area_px": self.area_px,
            "lesion_area_mm2": None if self.area_mm2 is None else round(self.area_mm2, 3),
            "max_lesion_probability": round(float(self.lesion_probability_map.max()), 6),
            "pixel_spacing_mm": None if self.spacing_mm is None else list(self.spacing_mm),
            "pixel_spacing_source": self.spacing_source,
            "width_px": int(self.mask.shape[1]), "height_px": int(self.mask.shape[0]),
            "model_limitations": list(self.model_limitations),
            "research_use_only": True,
        }


def predict_image(image: str | Path | np.ndarray | Image2D, model: MammographyModel | str | Path | None = None, *,
                  frame: int | None = None, spacing_mm: tuple[float, float] | None = None) -> MammographyResult:
    """Segment the lesions of one mammogram.

    Args:
        image: file path (PNG/JPEG/BMP/TIFF/DICOM MG), (H, W) or (H, W, 3) array, or :class:`Image2D`.
        model: loaded model, model id/folder, or ``None`` for the shipped demo model.
        frame: frame of a multi-frame file.
        spacing_mm: (row_mm, column_mm) for an array input (DICOM files carry PixelSpacing/ImagerPixelSpacing).
    Raises:
        InputError: unreadable or invalid image (named). ModelError: model problems.
    """
    model = model if isinstance(model, MammographyModel) else load_mammography_model(model)
    picture = as_image2d(image, frame, spacing_mm)
    x, letterbox = network_input(picture.pixels, model.card.input_size_px)
    with torch.inference_mode():
        logits = model.network(x[None])
    probability = letterbox.invert(torch.sigmoid(logits[0, 0].float()))
    mask = probability > model.card.threshold
    area_px = int(mask.sum())
    pixel_area = picture.pixel_area_mm2
    return MammographyResult(
        mask=mask.astype(np.uint8), lesion_probability_map=probability.astype(np.float32), area_px=area_px,
        area_mm2=None if pixel_area is None else area_px * pixel_area, spacing_mm=picture.spacing_mm,
        spacing_source=picture.spacing_source, model_id=model.model_id,
        source=None if str(picture.source) == "<array>" else str(picture.source), frame_index=picture.frame_index,
        model_limitations=tuple(model.card.limitations))
