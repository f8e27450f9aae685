"""A 2D grayscale image with its physical pixel size."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Image2D:
    """A grayscale 2D image as read from disk.

    Attributes:
        pixels: (H, W) float32 array, original intensity units (RGB already converted to luminance).
        spacing_mm: (row_mm, column_mm) physical size of one pixel, or ``None`` when the file does not say.
        source: the file it came from.
        frame_index: frame read from a multi-frame file (0 for single-frame files).
        spacing_source: where the spacing came from (``"ultrasound_region"``, ``"PixelSpacing"``,
            ``"ImagerPixelSpacing"``) or ``"none"``.
    """

    pixels: np.ndarray
    spacing_mm: tuple[float, float] | None
    source: Path
    frame_index: int = 0
    spacing_source: str = "none"

    @property
    def height_px(self) -> int:
        """Rows (H)."""
        return int(self.pixels.shape[0])

    @property
    def width_px(self) -> int:
        """Columns (W)."""
        return int(self.pixels.shape[1])

    @property
    def pixel_area_mm2(self) -> float | None:
        """Area of one pixel in mm2, or ``None`` without a spacing."""
        if self.spacing_mm is None:
            return None
        return float(self.spacing_mm[0] * self.spacing_mm[1])
