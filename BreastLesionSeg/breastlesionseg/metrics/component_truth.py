"""Connected components of a segmentation matched to a reference lesion map, one row per component.

Storing, per component, its voxel count, its overlap with the reference and the reference lesions it
touches lets a benchmark or a calibration re-score any subset of the components (e.g. the ones a
confidence model reports) without running the network again:

* lesion Dice of a subset ``S`` = 2 sum_S overlap / (sum_S voxels + reference voxels);
* a reference lesion is detected when a component of ``S`` touches it (any overlap, the rule of
  :mod:`breastlesionseg.metrics.detection` with ``min_iou = 0``);
* a false positive is a component of ``S`` that touches no reference lesion.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError

#: reference lesions below this volume (mm3) are not counted for sensitivity (too small to call missed)
MIN_SCORED_LESION_MM3 = 20.0
#: the small lesions of the benchmarks and probes: [20, 300) mm3, where the misses are (issue 17)
SMALL_LESION_RANGE_MM3 = (MIN_SCORED_LESION_MM3, 300.0)


def is_small_lesion(volume_mm3: float) -> bool:
    """True for a lesion volume (mm3) in :data:`SMALL_LESION_RANGE_MM3` (lower end included, upper excluded)."""
    low, high = SMALL_LESION_RANGE_MM3
    return low <= float(volume_mm3) < high


def reference_lesions(reference: np.ndarray, voxel_volume_mm3: float) -> dict[int, float]:
    """``{reference label: volume_mm3}`` of the reference lesions (labels > 0)."""
    counts = np.bincount(np.asarray(reference, dtype=np.int64).ravel())
    return {int(k): float(c * voxel_volume_mm3) for k, c in enumerate(counts) if k > 0 and c > 0}


def match_components(components: np.ndarray, reference: np.ndarray) -> dict[int, dict[str, Any]]:
    """Per component 1..N: ``n_voxels``, ``n_overlap`` (voxels in any reference lesion), ``touches`` (labels).

    Args:
        components: (z, y, x) integer components (0 background).
        reference: (z, y, x) reference lesion labels on the same grid (0 background).
    """
    if components.shape != reference.shape:
        raise InputError(f"components {components.shape} and reference {reference.shape} must share the grid")
    out: dict[int, dict[str, Any]] = {}
    for label, sl in enumerate(ndimage.find_objects(np.asarray(components)), start=1):
        if sl is None:
            continue
        comp = components[sl] == label
        ref = np.asarray(reference[sl])[comp]
        touched = np.unique(ref[ref > 0])
        out[label] = {"n_voxels": int(comp.sum()), "n_overlap": int(np.count_nonzero(ref)),
                      "touches": [int(t) for t in touched]}
    return out


def is_false_positive(row: dict[str, Any]) -> bool:
    """A component row is a false positive when it touches no reference lesion (the rule of this module)."""
    return not row["touches"]


def score_subset(
    rows: Sequence[dict[str, Any]],
    reference_volumes_mm3: dict[int, float],
    reference_voxels: int,
    keep: Callable[[dict[str, Any]], bool],
    min_volume_mm3: float = MIN_SCORED_LESION_MM3,
) -> dict[str, Any]:
    """Dice, false positives and detections of the components ``keep`` selects (rows of one exam).

    Returns:
        ``{"dice": float | None, "fp": int, "n_ref": int, "n_detected": int}``; Dice is ``None`` when
        both the subset and the reference are empty; ``n_ref`` counts reference lesions >= ``min_volume_mm3``.
    """
    kept = [r for r in rows if keep(r)]
    vox = sum(r["n_voxels"] for r in kept)
    overlap = sum(r["n_overlap"] for r in kept)
    dice = None if vox + reference_voxels == 0 else 2.0 * overlap / (vox + reference_voxels)
    touched = {t for r in kept for t in r["touches"]}
    big = [int(k) for k, v in reference_volumes_mm3.items() if v >= min_volume_mm3]  # JSON keys may be str
    return {"dice": dice, "fp": sum(is_false_positive(r) for r in kept), "n_ref": len(big),
            "n_detected": sum(k in touched for k in big)}


__all__ = ["MIN_SCORED_LESION_MM3", "SMALL_LESION_RANGE_MM3", "is_false_positive", "is_small_lesion", "match_components",
           "reference_lesions", "score_subset"]
