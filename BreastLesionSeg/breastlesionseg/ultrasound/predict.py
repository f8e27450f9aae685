"""Run an ultrasound model on one image: lesion mask, lesion-present and malignancy probabilities, heat map.

Public entry point for the CLI and the Slicer module::

    from breastlesionseg.ultrasound import load_ultrasound_model, predict_image
    model = load_ultrasound_model()            # the shipped model, or a folder / id
    result = predict_image("image.png", model)  # or an (H, W) / (H, W, 3) array, or an Image2D
    result.mask, result.malignancy_probability, result.heat_map, result.area_mm2
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..imaging2d.gradcam2d import forward_with_gradcam
from ..imaging2d.image2d import Image2D
from ..imaging2d.image_io import as_image2d
from ..imaging2d.intensity import scale_to_unit
from ..imaging2d.lesion_crops import crop
from .model import DEFAULT_MODEL_ID, UltrasoundModel, load_ultrasound_model
from .lesion_descriptors import describe_lesion
from .malignancy_model import sigmoid
from .lesion_zoom import mean_logit_probability, merge_zoomed, zoom_box
from .preprocess import network_input

#: connected components smaller than this fraction of the largest one are dropped from the mask
MIN_COMPONENT_FRACTION = 0.1


@dataclass
class UltrasoundResult:
    """Result of one image.

    Attributes:
        mask: (H, W) uint8, 1 = lesion, exactly the input's size (empty when no lesion is found).
        lesion_probability_map: (H, W) float32 per-pixel lesion probability.
        lesion_present_probability: probability that the image shows a lesion, 0..1.
        malignancy_probability: probability that the lesion is malignant, 0..1 (meaningful when a lesion is present).
        heat_map: (H, W) float32 Grad-CAM of the malignancy head in [0, 1] (zeros when not computed).
        area_px: lesion area in pixels.
        area_mm2: lesion area in mm2, or ``None`` when the image has no pixel spacing.
        spacing_mm: (row_mm, column_mm) or ``None``.
        model_id: the model that produced it.
        network_malignancy_probability: the network's own malignancy probability (``malignancy_probability``
            also weighs the lesion descriptors when the card has a malignancy model).
        lesion_descriptors: BI-RADS-like descriptors of the lesion (``ultrasound.lesion_descriptors``;
            empty when no lesion is found).
        classifier_malignancy_probability: the lesion-crop classifier's own malignancy probability
            (``ultrasound.crop_classifier``; None when the model has no classifier or no lesion is found).
        source: input file, when read from one.
        frame_index: frame of a multi-frame input.
        model_limitations: the model card's known limitations (texts), repeated with every result.
    """

    mask: np.ndarray
    lesion_probability_map: np.ndarray
    lesion_present_probability: float
    malignancy_probability: float
    heat_map: np.ndarray
    area_px: int
    area_mm2: float | None
    spacing_mm: tuple[float, float] | None
    model_id: str
    network_malignancy_probability: float = math.nan
    lesion_descriptors: dict[str, float] = field(default_factory=dict)
    classifier_malignancy_probability: float | None = None
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
            "lesion_present_probability": round(self.lesion_present_probability, 6),
            "malignancy_probability": round(self.malignancy_probability, 6),
            "network_malignancy_probability": round(self.network_malignancy_probability, 6),
            "classifier_malignancy_probability": (None if self.classifier_malignancy_probability is None
                                                  else round(self.classifier_malignancy_probability, 6)),
            "lesion_descriptors": {name: round(value, 6) for name, value in self.lesion_descriptors.items()},
            "lesion_found": self.lesion_found, "lesion_area_px": self.area_px,
            "lesion_area_mm2": None if self.area_mm2 is None else round(self.area_mm2, 3),
            "pixel_spacing_mm": None if self.spacing_mm is None else list(self.spacing_mm),
            "width_px": int(self.mask.shape[1]), "height_px": int(self.mask.shape[0]),
            "model_limitations": list(self.model_limitations),
            "research_use_only": True,
        }


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Drop connected components smaller than :data:`MIN_COMPONENT_FRACTION` of the largest one."""
    from scipy.ndimage import label

    labels, count = label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(sizes >= MIN_COMPONENT_FRACTION * sizes.max()) + 1
    return np.isin(labels, keep)


def _forward(model: UltrasoundModel, network_input: torch.Tensor, with_heat_map: bool = False,
             flip: bool | None = None) -> tuple[float, float, torch.Tensor, np.ndarray | None]:
    """(lesion-present probability, malignancy probability, (S, S) lesion probability, (S, S) heat map or None)
    of one (C, S, S) input.

    With the card's ``test_time_flip`` the batch also holds the left-right mirrored input: the lesion map
    (mirrored back) and the malignancy probability are the means over both; the lesion-present probability,
    whose threshold was calibrated on single images, is the image's own. ``with_heat_map``: the same forward
    pass also gives the input's Grad-CAM of the malignancy head. ``flip`` overrides the card's ``test_time_flip``.
    """
    flip = model.card.test_time_flip if flip is None else flip
    batch = network_input[None]
    if flip:
        batch = torch.cat([batch, torch.flip(batch, dims=[-1])])
    batch = batch.contiguous(memory_format=torch.channels_last)
    heat = None
    if with_heat_map:
        output, heat = forward_with_gradcam(model.network, batch)
    with torch.inference_mode():
        if not with_heat_map:
            output = model.network(batch)
        probability = torch.sigmoid(output.seg_logits[:, 0])
        lesion_present = float(torch.sigmoid(output.lesion_logit.flatten()[0]))
        malignancy = float(torch.sigmoid(output.malignancy_logit.flatten()).mean())
        lesion_map = (probability[0] + torch.flip(probability[1], dims=[-1])) / 2 if flip else probability[0]
    return lesion_present, malignancy, lesion_map, heat


def _zoomed_pass(model: UltrasoundModel, unit_pixels: np.ndarray, probability: np.ndarray,
                 malignancy: float) -> tuple[np.ndarray, float]:
    """The card's lesion-focused second pass (see :mod:`.lesion_zoom`): (merged (H, W) map, malignancy).

    The crop runs alone, without its mirror image (chosen on validation images of folds 0 and 1: Dice
    -0.000 / -0.001, malignancy AUC +0.004 / -0.002 against the mirrored pair, at half the cost).

    Returns the first pass unchanged when the card has no zoom or the first-pass mask is empty.
    """
    if not model.card.lesion_zoom_margin:
        return probability, malignancy
    box = zoom_box(clean_mask(probability > model.card.threshold), model.card.lesion_zoom_margin)
    if box is None:
        return probability, malignancy
    zoomed_input, letterbox = network_input(crop(unit_pixels, box), model.card.input_size_px)
    _, zoomed_malignancy, zoomed_probability, _ = _forward(model, zoomed_input, flip=False)
    merged = merge_zoomed(probability, box, letterbox.invert(zoomed_probability))
    return merged, mean_logit_probability([malignancy, zoomed_malignancy])


def predict_image(image: str | Path | np.ndarray | Image2D, model: UltrasoundModel | str | Path | None = None, *,
                  frame: int | None = None, spacing_mm: tuple[float, float] | None = None,
                  with_heat_map: bool = True) -> UltrasoundResult:
    """Segment the lesion of one ultrasound image and estimate lesion-present and malignancy probabilities.

    Args:
        image: file path (PNG/JPEG/BMP/TIFF/DICOM), (H, W) or (H, W, 3) array, or :class:`Image2D`.
        model: loaded model, model id/folder, or ``None`` for the shipped model.
        frame: frame of a multi-frame file.
        spacing_mm: (row_mm, column_mm) for an array input (files carry their own).
        with_heat_map: compute the Grad-CAM heat map (a backward pass from the first forward pass).

    With the card's ``lesion_zoom_margin`` a second pass on the first-pass lesion's neighbourhood refines
    the lesion map there and averages its malignancy logit with the first pass's. The lesion-present
    probability is the whole image's (first pass). With the card's ``malignancy_model`` the malignancy
    probability of a found lesion also weighs its descriptors (shape, orientation, margin, echo pattern) and,
    with the card's ``crop_classifier``, the lesion-crop classifier's logit.
    Raises:
        InputError: unreadable or invalid image (named). ModelError: model problems.
    """
    model = model if isinstance(model, UltrasoundModel) else load_ultrasound_model(model or DEFAULT_MODEL_ID)
    picture = as_image2d(image, frame, spacing_mm)
    unit_pixels = scale_to_unit(picture.pixels)
    first_input, letterbox = network_input(unit_pixels, model.card.input_size_px)
    lesion_present, malignancy, seg_probability, heat_map = _forward(model, first_input, with_heat_map)
    probability = letterbox.invert(seg_probability)
    probability, malignancy = _zoomed_pass(model, unit_pixels, probability, malignancy)
    mask = np.zeros(probability.shape, dtype=bool)
    if lesion_present >= model.card.lesion_present_threshold:
        mask = clean_mask(probability > model.card.threshold)
    heat = letterbox.invert(heat_map) if heat_map is not None else np.zeros_like(probability)
    descriptors = describe_lesion(unit_pixels, mask) if mask.any() else {}
    classifier_logit = model.crop_classifier.logit(unit_pixels, mask) if model.crop_classifier is not None else None
    network_malignancy = malignancy
    malignancy_model = model.malignancy_model if descriptors else None
    if malignancy_model is not None:
        malignancy = malignancy_model.probability(network_malignancy, descriptors, classifier_logit)
    area_px = int(mask.sum())
    pixel_area = picture.pixel_area_mm2
    return UltrasoundResult(
        mask=mask.astype(np.uint8), lesion_probability_map=probability, lesion_present_probability=lesion_present,
        malignancy_probability=malignancy, network_malignancy_probability=network_malignancy,
        lesion_descriptors=descriptors,
        classifier_malignancy_probability=None if classifier_logit is None else sigmoid(classifier_logit),
        heat_map=np.clip(heat, 0, 1).astype(np.float32), area_px=area_px,
        area_mm2=None if pixel_area is None else area_px * pixel_area, spacing_mm=picture.spacing_mm,
        model_id=model.model_id, source=None if str(picture.source) == "<array>" else str(picture.source),
        frame_index=picture.frame_index, model_limitations=tuple(model.card.limitations))
