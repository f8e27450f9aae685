"""Preprocess a dataset case once for training/validation: OV crop -> model spacing -> channels.

The steps are exactly those of inference (``breastlesionseg.inference.preprocess``): cut the
optimized-volume crop (breast bounding box + margin, Narimani et al.), resample linearly to the model
card's spacing, build the named channels with z-score normalisation inside the breast mask. The
lesion labels follow the same crop and are resampled with nearest neighbour. The result is kept in
memory (the training cache), so every epoch only crops patches and augments them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..exam.resample import resample_to_grid
from ..geometry import Geometry, Volume
from ..inference.preprocess import build_model_input, crop_exam, phases_needed, resample_to_model

log = logging.getLogger(__name__)


@dataclass
class PreparedCase:
    """One case on the model grid.

    Attributes:
        case_id: dataset case id.
        image: ``(C, z, y, x)`` float32 network input (normalised channels; float16 in a ``--cache-dtype float16``
            training cache).
        label: ``(1, z, y, x)`` uint8 binary lesion mask.
        breast: ``(z, y, x)`` uint8 breast mask (0/1/2).
        geometry: the model grid (crop at the model spacing).
        lesion_voxels: number of lesion voxels on the model grid.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    breast: np.ndarray
    geometry: Geometry
    lesion_voxels: int

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return int(self.image.nbytes + self.label.nbytes + self.breast.nbytes)


def prepare_case(
    case_id: str,
    exam,
    lesion_labels: Volume,
    breast_mask: Volume,
    channels: Sequence[str],
    normalization: str,
    target_spacing_mm: Sequence[float],
    margin_mm: float = 16.0,
) -> PreparedCase:
    """Crop, resample and normalise one case (see module docstring).

    Args:
        case_id: name used in logs.
        exam: :class:`~breastlesionseg.exam.DCEExam` on the pre grid.
        lesion_labels: lesion labels (0 background, >0 lesion) on the pre grid.
        breast_mask: breast mask 0/1/2 on the pre grid.
        channels: input channel names (``pre``, ``post1``, ``sub1``, ...).
        normalization: ``zscore`` or ``none``.
        target_spacing_mm: model spacing (x, y, z) in mm.
        margin_mm: OV crop margin in mm.

    Returns:
        The :class:`PreparedCase`.
    """
    cropped = crop_exam(exam, breast_mask, phases_needed(channels), margin_mm=margin_mm)
    model_exam, breast_model, grid = resample_to_model(cropped, target_spacing_mm)
    image = build_model_input(model_exam, breast_model, channels, normalization, "breast_mask")
    lesion_crop = cropped.crop.crop((np.asarray(lesion_labels.array) > 0).astype(np.uint8))
    label = resample_to_grid(Volume(lesion_crop, cropped.geometry, name="lesions"), grid, "nearest", 0).array
    label = (np.asarray(label) > 0).astype(np.uint8)[None]
    n = int(label.sum())
    log.debug("prepared %s: crop %s -> model grid %s, %d lesion voxels", case_id, cropped.crop.shape_zyx,
              grid.shape_zyx, n)
    return PreparedCase(case_id, image, label, np.asarray(breast_model, dtype=np.uint8), grid, n)
