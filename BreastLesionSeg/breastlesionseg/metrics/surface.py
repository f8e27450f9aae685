"""Surface distances between two binary masks: 95 % Hausdorff distance and average symmetric surface distance.

Computed with MONAI (``compute_hausdorff_distance(percentile=95)`` and
``compute_average_surface_distance(symmetric=True)``) with the voxel spacing, so the values are in mm.
Surfaces are the mask voxels with a 6-neighbour outside the mask; distances are between surface voxel
centres. HD95 = max of the two directed 95th percentiles; ASD = mean of both directed distance sets.

Oblique grids: distances are computed in index space scaled by the spacing, which is exact when the
direction matrix is orthonormal (a rotation keeps distances); a sheared direction is reported in the log.

Empty masks (documented rule): both empty -> both distances 0.0 (identical, nothing to compare);
exactly one empty -> ``None`` (the distance is infinite / undefined; MONAI returns inf or NaN).
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from ..geometry import Geometry
from ._inputs import finite_or_none, orthonormal

log = logging.getLogger(__name__)


def _bbox_crop(a: np.ndarray, b: np.ndarray, margin: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Crop both masks to the bounding box of their union plus a margin (saves memory and time)."""
    union = a | b
    idx = np.argwhere(union)
    lo = np.maximum(idx.min(axis=0) - margin, 0)
    hi = np.minimum(idx.max(axis=0) + margin + 1, union.shape)
    sl = tuple(slice(int(l), int(h)) for l, h in zip(lo, hi))
    return a[sl], b[sl]


def surface_distances(prediction: np.ndarray, reference: np.ndarray, geometry: Geometry) -> dict:
    """HD95 and average symmetric surface distance in mm.

    Args:
        prediction: ``(z, y, x)`` mask (non-zero = foreground) on ``geometry``.
        reference: ``(z, y, x)`` mask on the same grid.
        geometry: the grid (its spacing gives mm).

    Returns:
        ``{"hd95_mm", "asd_mm", "surface_distance_note"}``; see the module docstring for empty masks.
    """
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    p = np.asarray(prediction) != 0
    r = np.asarray(reference) != 0
    if not p.any() and not r.any():
        return {"hd95_mm": 0.0, "asd_mm": 0.0, "surface_distance_note": "both masks empty"}
    if not p.any() or not r.any():
        which = "prediction" if not p.any() else "reference"
        return {"hd95_mm": None, "asd_mm": None, "surface_distance_note": f"{which} empty: distance undefined"}
    if not orthonormal(geometry):
        log.warning("direction matrix is not orthonormal; surface distances use the spacing only")
    p, r = _bbox_crop(p, r)
    spacing_zyx = [float(s) for s in geometry.spacing[::-1]]
    yp = torch.from_numpy(p[None, None].astype(np.float32))
    yt = torch.from_numpy(r[None, None].astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns on empty masks, handled above
        hd95 = compute_hausdorff_distance(yp, yt, include_background=True, percentile=95, spacing=spacing_zyx)
        asd = compute_average_surface_distance(yp, yt, include_background=True, symmetric=True, spacing=spacing_zyx)
    return {
        "hd95_mm": finite_or_none(hd95.item()),
        "asd_mm": finite_or_none(asd.item()),
        "surface_distance_note": None,
    }
