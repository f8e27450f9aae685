"""Breast-region segmentation (left/right breast masks) and the optimized-volume crop.

Public API::

    from breastlesionseg.breast import (BreastRegionConfig, BreastRegionResult, segment_breast_region,
                                        CropBox, compute_crop, breast_volumes_ml)

``segment_breast_region(exam, config=None) -> BreastRegionResult`` (``.mask`` uint8 0/1/2 on the
pre-contrast grid, ``.volumes_ml``, ``.method``, ``.timings_s``); ``compute_crop(mask, margin_mm=16,
multiple=16, min_size=None) -> CropBox`` with exact ``crop`` / ``uncrop`` / ``geometry``.
"""
from __future__ import annotations

from .api import segment_breast_region
from .config import BreastRegionConfig
from .crop import CropBox, compute_crop
from .result import BreastRegionResult, breast_volumes_ml

#: the OV crop of Narimani et al., by its name in the design document
OptimizedVolumeCrop = CropBox

__all__ = [
    "BreastRegionConfig", "BreastRegionResult", "CropBox", "OptimizedVolumeCrop", "breast_volumes_ml",
    "compute_crop", "segment_breast_region",
]
