"""Robust per-image intensity scaling (the same for training and inference)."""
from __future__ import annotations

import numpy as np

#: lower / upper percentiles mapped to 0 / 1
LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5


def scale_to_unit(pixels: np.ndarray) -> np.ndarray:
    """Map the 0.5th..99.5th intensity percentiles of ``pixels`` (H, W) to 0..1 and clip; float32.

    Independent of the scanner's gain and bit depth. A constant image maps to zeros.
    """
    values = np.asarray(pixels, dtype=np.float32)
    low, high = np.percentile(values, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if not np.isfinite(low) or not np.isfinite(high) or high <= low:
        return np.zeros_like(values)
    return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)
