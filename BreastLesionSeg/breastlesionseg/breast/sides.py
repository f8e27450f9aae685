"""Left/right split of a breast region at the sternal midline.

Label 1 is the patient's left breast (+x in LPS), label 2 the patient's right breast.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..geometry import Geometry
from ..labels import BREAST_LEFT, BREAST_RIGHT

#: the valley between the breasts must be below this fraction of the lower breast peak
VALLEY_FRACTION = 0.6


def midline_from_profile(profile: np.ndarray, smooth_voxels: int = 1) -> float | None:
    """Index of the sternal midline from a breast-thickness profile along x (LPS-oriented axis).

    The profile (voxel count per x column) has two humps, one per breast; the midline is the
    minimum between the largest hump on each half of the occupied range.

    Args:
        profile: ``(nx,)`` non-negative counts.
        smooth_voxels: width of the moving average applied first.

    Returns:
        The midline x index, or None when there is no clear valley (one breast in the field of view).
    """
    prof = ndi.uniform_filter1d(np.asarray(profile, dtype=float), size=max(1, int(smooth_voxels)))
    xs = np.nonzero(prof > 0)[0]
    if xs.size == 0:
        return None
    x_lo, x_hi = int(xs.min()), int(xs.max())
    if x_hi - x_lo < 4:
        return None
    xc = (x_lo + x_hi) // 2
    pl = x_lo + int(np.argmax(prof[x_lo: xc + 1]))
    pr = xc + int(np.argmax(prof[xc: x_hi + 1]))
    if pr - pl < 2:
        return None
    valley = pl + int(np.argmin(prof[pl: pr + 1]))
    if prof[valley] >= VALLEY_FRACTION * min(prof[pl], prof[pr]):
        return None
    return float(valley)


def scanner_midline_index(geometry_lps_oriented: Geometry) -> float:
    """x index (LPS-oriented grid) of the scanner's LPS x = 0 plane at the grid centre.

    Fallback midline when only one breast is visible: patients lie centred in the magnet.
    """
    g = geometry_lps_oriented
    centre = np.array([0.0, (g.size[1] - 1) / 2.0, (g.size[2] - 1) / 2.0])
    p0 = g.index_to_lps(centre)
    step_x = g.direction_matrix[0, 0] * g.spacing[0]
    if abs(step_x) < 1e-6:
        return (g.size[0] - 1) / 2.0
    return float(-p0[0] / step_x)


def split_sides(region: np.ndarray, geometry: Geometry, smooth_mm: float = 10.0) -> tuple[np.ndarray, dict]:
    """Label a binary breast region (on any grid, any orientation) as left (1) / right (2).

    Args:
        region: ``(z, y, x)`` bool/0-1 array on ``geometry``.
        geometry: its grid.
        smooth_mm: moving-average width of the thickness profile.

    Returns:
        ``(labels uint8 (z, y, x), info)`` with ``info = {"midline_lps_x_mm", "single_breast"}``.
    """
    img = geometry.apply_to(sitk.GetImageFromArray(np.asarray(region, dtype=np.uint8)))
    oriented = sitk.DICOMOrient(img, "LPS")
    g_o = Geometry.from_sitk(oriented)
    arr = sitk.GetArrayFromImage(oriented).astype(bool)
    mid = midline_from_profile(arr.sum(axis=(0, 1)), max(1, int(round(smooth_mm / g_o.spacing[0]))))
    single = mid is None
    if mid is None:
        mid = scanner_midline_index(g_o)
    xx = np.arange(arr.shape[2])[None, None, :]
    labels = np.zeros(arr.shape, dtype=np.uint8)
    labels[arr & (xx > mid)] = BREAST_LEFT
    labels[arr & (xx <= mid)] = BREAST_RIGHT
    out = sitk.GetImageFromArray(labels)
    out.CopyInformation(oriented)
    back = sitk.DICOMOrient(out, geometry.orientation_code())
    mid_lps = float(g_o.index_to_lps(np.array([mid, 0.0, 0.0]))[0])
    return sitk.GetArrayFromImage(back).astype(np.uint8), {"midline_lps_x_mm": mid_lps, "single_breast": single}
