"""Turn a grayscale ultrasound image into the network input, identically for training and inference."""
from __future__ import annotations

import numpy as np
import torch

from ..imaging2d.letterbox import Letterbox


def network_input(unit_pixels: np.ndarray, size_px: int) -> tuple[torch.Tensor, Letterbox]:
    """Letterbox an intensity-scaled (H, W) image (values 0..1, see :func:`scale_to_unit`).

    Returns:
        ((1, size, size) float32 tensor, its :class:`Letterbox`).
    """
    box = Letterbox.fit(unit_pixels.shape[0], unit_pixels.shape[1], size_px)
    return box.apply(unit_pixels), box
