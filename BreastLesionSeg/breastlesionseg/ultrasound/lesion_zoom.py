"""The second, lesion-focused pass of an ultrasound model: where to look, and how to merge it with the first.

The first pass sees the whole image letterboxed to the network's input (a 256-px image at 128 px). The
second pass crops the first pass's lesion with a margin and runs the same network on that crop, so the
lesion's margin is seen at up to a few times the resolution. The models were trained on random
lesion-containing crops as well as whole images, so such a crop is within their training distribution.
"""
from __future__ import annotations

import math

import numpy as np

from ..imaging2d.lesion_crops import Box, lesion_bbox
from .malignancy_model import logit, sigmoid


def zoom_box(mask: np.ndarray, margin_fraction: float) -> Box | None:
    """The lesion's bounding box grown by ``margin_fraction`` of its height / width on every side.

    Args:
        mask: (H, W) first-pass lesion mask.
        margin_fraction: growth per side as a fraction of the box's own height (rows) and width (columns).
    Returns:
        ``(top, left, bottom, right)`` clipped to the image, or ``None`` when the mask is empty.
    """
    box = lesion_bbox(mask)
    if box is None:
        return None
    top, left, bottom, right = box
    grow_rows = math.ceil(margin_fraction * (bottom - top))
    grow_cols = math.ceil(margin_fraction * (right - left))
    height, width = mask.shape
    return max(0, top - grow_rows), max(0, left - grow_cols), min(height, bottom + grow_rows), min(width, right + grow_cols)


def merge_zoomed(probability: np.ndarray, box: Box, zoomed_probability: np.ndarray) -> np.ndarray:
    """(H, W) lesion map: the mean of the first pass and the zoomed pass inside ``box``, the first pass outside.

    Args:
        probability: (H, W) first-pass lesion probability.
        box: the zoom box.
        zoomed_probability: (box height, box width) lesion probability of the crop.
    """
    top, left, bottom, right = box
    if zoomed_probability.shape != (bottom - top, right - left):
        raise ValueError(f"zoomed map {zoomed_probability.shape} does not match box {box}")
    merged = probability.astype(np.float32, copy=True)
    merged[top:bottom, left:right] = (merged[top:bottom, left:right] + zoomed_probability) / 2
    return merged


def mean_logit_probability(probabilities: list[float]) -> float:
    """The probability whose logit is the mean of the given probabilities' logits (clipped at 1e-6)."""
    return sigmoid(np.mean(logit(probabilities)))
