"""Aspect-preserving resize of an image into a square network input ("letterbox") and its exact inverse."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Letterbox:
    """Where an (H, W) image sits inside a (size, size) square after scaling by ``size / max(H, W)``.

    Attributes:
        size_px: side of the square network input.
        height_px, width_px: the original image size.
        inner_height_px, inner_width_px: the scaled image size inside the square.
        top_px, left_px: offset of the scaled image (centred, zero padding around it).
    """

    size_px: int
    height_px: int
    width_px: int
    inner_height_px: int
    inner_width_px: int
    top_px: int
    left_px: int

    @classmethod
    def fit(cls, height_px: int, width_px: int, size_px: int) -> "Letterbox":
        """The letterbox of an (height_px, width_px) image in a size_px square."""
        scale = size_px / max(height_px, width_px)
        inner_h = min(size_px, max(1, round(height_px * scale)))
        inner_w = min(size_px, max(1, round(width_px * scale)))
        return cls(size_px, height_px, width_px, inner_h, inner_w, (size_px - inner_h) // 2, (size_px - inner_w) // 2)

    def content_mask(self) -> np.ndarray:
        """(size, size) bool, true where the image is (not padding)."""
        mask = np.zeros((self.size_px, self.size_px), dtype=bool)
        mask[self.top_px:self.top_px + self.inner_height_px, self.left_px:self.left_px + self.inner_width_px] = True
        return mask

    def apply(self, image: np.ndarray | torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
        """Resize an (H, W) or (C, H, W) array into the (C, size, size) square; float32 tensor.

        ``mode="bilinear"`` uses antialiasing (images); use ``"area"``/``"bilinear"`` + threshold for masks.
        """
        t = torch.as_tensor(np.asarray(image, dtype=np.float32) if not torch.is_tensor(image) else image).float()
        if t.ndim == 2:
            t = t[None]
        inner = F.interpolate(t[None], size=(self.inner_height_px, self.inner_width_px), mode=mode,
                              antialias=(mode == "bilinear"), align_corners=False if mode == "bilinear" else None)[0]
        out = torch.zeros((t.shape[0], self.size_px, self.size_px), dtype=torch.float32)
        out[:, self.top_px:self.top_px + self.inner_height_px, self.left_px:self.left_px + self.inner_width_px] = inner
        return out

    def invert(self, square: np.ndarray | torch.Tensor) -> np.ndarray:
        """Map a (size, size) map (e.g. lesion probability) back to the original (H, W), bilinear; float32."""
        t = torch.as_tensor(square).float()
        inner = t[..., self.top_px:self.top_px + self.inner_height_px, self.left_px:self.left_px + self.inner_width_px]
        while inner.ndim < 4:
            inner = inner[None]
        out = F.interpolate(inner, size=(self.height_px, self.width_px), mode="bilinear", align_corners=False)
        return out[0, 0].numpy().astype(np.float32)
