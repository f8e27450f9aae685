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


#: largest plausible volume of one breast (mL): macromastia reaches 3-4 L; beyond, the "breast" is not one
MAX_PLAUSIBLE_BREAST_ML = 4000.0


def breast_volume_warnings(volumes_ml: dict[str, float], source: str = "") -> list[str]:
    """WARNING texts for breast volumes no real breast has (e.g. a noise image giving a 41 L "breast").

    Args:
        volumes_ml: ``{"left": mL, "right": mL, ...}``.
        source: the image, for the message.

    Returns:
        Empty when both sides are plausible; else one text per implausible side.
    """
    where = f" in '{source}'" if source else ""
    out = []
    for side in ("left", "right"):
        value = float(volumes_ml.get(side, 0.0) or 0.0)
        if value > MAX_PLAUSIBLE_BREAST_ML:
            out.append(f"WARNING: implausible {side} breast volume {value:.0f} mL{where} (more than "
                       f"{MAX_PLAUSIBLE_BREAST_ML:.0f} mL): the image may not be a breast MRI, or be noise; the "
                       f"breast region and every result restricted to it are unreliable.")
    return out


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
        warnings: implausible results to show the user (:func:`breast_volume_warnings`).
    """

    mask: Volume
    volumes_ml: dict[str, float]
    method: str
    timings_s: dict[str, float] = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready summary (without the voxels)."""
        return {
            "method": self.method,
            "volumes_ml": dict(self.volumes_ml),
            "geometry": self.mask.geometry.to_dict(),
            "timings_s": dict(self.timings_s),
            "details": dict(self.details),
            "warnings": list(self.warnings),
        }
