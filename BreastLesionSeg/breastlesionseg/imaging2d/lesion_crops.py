"""Crops of an annotated 2D image: ones that contain the whole lesion, and lesion-free ones (negatives).

Datasets such as BUS-BRA hold no normal images; lesion-free regions of the annotated images (outside
the lesion's bounding box plus a margin) stand in for them. They come from the same patients and
scanners, so they are synthetic negatives, not normal exams. Lesion-containing crops at random zooms
are used for the positives too, so that zoom alone does not tell a negative from a positive.

Boxes are ``(top, left, bottom, right)`` in pixels, bottom/right exclusive.
"""
from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]


def lesion_bbox(mask: np.ndarray) -> Box | None:
    """Bounding box of the non-zero pixels of ``mask`` (H, W), or ``None`` when it is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def lesion_free_regions(shape: tuple[int, int], bbox: Box, margin_fraction: float = 0.06,
                        min_side_px: int = 32) -> list[Box]:
    """Strips above, below, left and right of ``bbox`` grown by a margin, each at least ``min_side_px`` wide.

    Args:
        shape: (H, W) of the image.
        bbox: lesion box.
        margin_fraction: margin as a fraction of the longer image side (at least 4 px).
        min_side_px: shortest usable side of a region.
    Returns:
        Regions, largest first (may be empty).
    """
    height, width = shape
    margin = max(4, round(margin_fraction * max(height, width)))
    top, left, bottom, right = bbox
    top, left = max(0, top - margin), max(0, left - margin)
    bottom, right = min(height, bottom + margin), min(width, right + margin)
    candidates = [(0, 0, top, width), (bottom, 0, height, width), (0, 0, height, left), (0, right, height, width)]
    regions = [b for b in candidates if b[2] - b[0] >= min_side_px and b[3] - b[1] >= min_side_px]
    return sorted(regions, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)


def random_subcrop(region: Box, rng: np.random.Generator, min_side_px: int = 32, max_aspect: float = 2.5) -> Box:
    """A random box inside ``region`` with sides >= ``min_side_px`` (when the region allows) and aspect <= max_aspect."""
    top, left, bottom, right = region
    height, width = bottom - top, right - left
    crop_h = int(rng.integers(min(min_side_px, height), height + 1))
    max_w = min(width, int(crop_h * max_aspect))
    min_w = min(max_w, max(min(min_side_px, width), int(np.ceil(crop_h / max_aspect))))
    crop_w = int(rng.integers(min_w, max_w + 1))
    if crop_h > crop_w * max_aspect:
        crop_h = int(crop_w * max_aspect)
    y0 = top + int(rng.integers(0, height - crop_h + 1))
    x0 = left + int(rng.integers(0, width - crop_w + 1))
    return y0, x0, y0 + crop_h, x0 + crop_w


def random_lesion_crop(shape: tuple[int, int], bbox: Box, rng: np.random.Generator, full_image_probability: float = 0.5) -> Box:
    """A random box of an (H, W) image that contains the whole ``bbox`` (the full image with the given probability)."""
    height, width = shape
    if rng.random() < full_image_probability:
        return 0, 0, height, width
    top, left, bottom, right = bbox
    return (int(rng.integers(0, top + 1)), int(rng.integers(0, left + 1)),
            int(rng.integers(bottom, height + 1)), int(rng.integers(right, width + 1)))


def crop(array: np.ndarray, box: Box) -> np.ndarray:
    """``array[top:bottom, left:right]``."""
    top, left, bottom, right = box
    return array[top:bottom, left:right]
