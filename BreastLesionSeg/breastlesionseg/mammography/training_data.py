"""Mammograms and lesion masks prepared for training and evaluation (letterboxed, intensity-scaled)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..imaging2d.image_io import read_image_2d
from ..imaging2d.intensity import scale_to_unit
from ..imaging2d.letterbox import Letterbox
from .cddcesm import MASK_THRESHOLD, MammogramCase


@dataclass
class PreparedCase:
    """One case at network resolution, plus its full-resolution reference mask.

    Attributes:
        case: the dataset record.
        image: (1, S, S) float32 tensor in 0..1 (letterboxed).
        mask: (1, S, S) float32 tensor, 0/1 (area-resampled reference, >= 0.5).
        full_mask: (H, W) bool reference at the file's resolution (for Dice at full size).
        letterbox: where the image sits in the square (to map predictions back).
    """

    case: MammogramCase
    image: torch.Tensor
    mask: torch.Tensor
    full_mask: np.ndarray
    letterbox: Letterbox


def network_input(pixels: np.ndarray, size_px: int) -> tuple[torch.Tensor, Letterbox]:
    """(H, W) intensities -> ((1, S, S) float32 0..1 tensor, its letterbox); the same for training and inference."""
    box = Letterbox.fit(pixels.shape[0], pixels.shape[1], size_px)
    return box.apply(scale_to_unit(pixels)), box


def read_reference_mask(case: MammogramCase) -> np.ndarray:
    """(H, W) bool lesion mask of a case (JPEG mask thresholded at 128)."""
    return read_image_2d(case.mask_path).pixels >= MASK_THRESHOLD


def prepare_case(case: MammogramCase, size_px: int) -> PreparedCase:
    """Read and prepare one case (raises InputError naming an unreadable file)."""
    image, box = network_input(read_image_2d(case.image_path).pixels, size_px)
    full_mask = read_reference_mask(case)
    if full_mask.shape != (box.height_px, box.width_px):
        raise ValueError(f"'{case.mask_path}' is {full_mask.shape} but its image is {(box.height_px, box.width_px)}")
    mask = (box.apply(full_mask.astype(np.float32), mode="area") >= 0.5).float()
    return PreparedCase(case, image, mask, full_mask, box)


def collate(cases: list[PreparedCase]) -> dict[str, torch.Tensor]:
    """``{"image": (N, 1, S, S), "mask": (N, 1, S, S)}``."""
    return {"image": torch.stack([c.image for c in cases]), "mask": torch.stack([c.mask for c in cases])}
