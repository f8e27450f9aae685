"""The result of a breast-region segmentation."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..geometry import Volume
from ..labels import BREAST_LEFT, BREAST_RIGHT


def breast_volumes_ml(mask: Volume) -> dict[str, float]:
    """Volumes of the left (label 1), right (label 2) and both breasts in mL (= cm3).

    Args:
        mask: 0/1/2 breast mask with its geometry.

    Returns:
        ``{"left": mL, "right": mL, "total": mL}``.
    """
    arr = np.asarray(mask.array)
    voxel_ml = mask.geometry.voxel_volume_mm3 / 1000.0
    left = float(np.count_nonzero(arr == BREAST_LEFT)) * voxel_ml
    right = float(np.count_nonzero(arr == BREAST_RIGHT)) * voxel_ml
    return {"left": left, "right": right, "total": left + right}


@dataclass
class BreastRegionResult:
    """Breast region of one exam on its pre-contrast grid.

    Attributes:
        mask: uint8 ``(z, y, x)`` Volume on the pre-contrast grid: 0 background, 1 patient's left
            breast (+x in LPS), 2 patient's right breast.
        volumes_ml: ``{"left", "right", "total"}`` in mL.
        method: ``"classical"`` or ``"model:<model_id>"``.
        timings_s: seconds per step (``total_s`` included).
        details: method-specific, JSON-ready facts (working spacing, midline, whether air / a chest
            wall was found, model id and sha256, ...).
    """

    mask: Volume
    volumes_ml: dict[str, float]
    method: str
    timings_s: dict[str, float] = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready summary (without the voxels)."""
        return {
            "method": self.method,
            "volumes_ml": dict(self.volumes_ml),
            "geometry": self.mask.geometry.to_dict(),
            "timings_s": dict(self.timings_s),
            "details": dict(self.details),
        }
