"""Checks on exam phases: physical overlap between grids and per-phase value checks."""
from __future__ import annotations

import numpy as np

from ..errors import GeometryError
from ..geometry import Geometry, Volume
from ..io.volume_io import check_volume_values

__all__ = ["check_volume_values", "overlap_fraction", "require_overlap"]


def overlap_fraction(moving: Geometry, fixed: Geometry, samples_per_axis: int = 9) -> float:
    """Fraction of ``moving``'s physical extent that lies inside ``fixed``'s extent.

    The extent of a grid is the box of its voxels (voxel centres +- half a voxel). ``moving`` is sampled on a
    regular ``samples_per_axis``^3 lattice spanning its extent; each sample is mapped into ``fixed``'s index
    space, so oblique directions are handled exactly.

    Returns:
        A value in [0, 1]; 0 means the two volumes do not overlap in space.
    """
    axes = [np.linspace(-0.5, s - 0.5, samples_per_axis) for s in moving.size]
    ijk = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    lps = moving.index_to_lps(ijk)
    idx = fixed.lps_to_index(lps)
    size = np.asarray(fixed.size, dtype=float)
    tol = 1e-6
    inside = np.all((idx >= -0.5 - tol) & (idx <= size - 0.5 + tol), axis=1)
    return float(inside.mean())


def require_overlap(moving: Volume, fixed: Volume, min_fraction: float = 0.0) -> float:
    """Raise :class:`GeometryError` naming both volumes when ``moving`` does not overlap ``fixed`` in space.

    Args:
        moving: the phase to check (e.g. a post-contrast phase).
        fixed: the reference (the pre-contrast phase).
        min_fraction: smallest accepted fraction of ``moving``'s extent inside ``fixed`` (0 = any overlap).

    Returns:
        The overlap fraction.
    """
    frac = overlap_fraction(moving.geometry, fixed.geometry)
    fixed_frac = overlap_fraction(fixed.geometry, moving.geometry)
    if frac <= min_fraction and fixed_frac <= min_fraction:
        lo_m, hi_m = _extent(moving.geometry)
        lo_f, hi_f = _extent(fixed.geometry)
        raise GeometryError(
            f"'{moving.source or moving.name}' and '{fixed.source or fixed.name}' do not overlap in space "
            f"(overlap {100 * max(frac, fixed_frac):.0f}%): LPS extent {_fmt(lo_m)}..{_fmt(hi_m)} mm vs "
            f"{_fmt(lo_f)}..{_fmt(hi_f)} mm. Are they from the same exam (same patient position, same frame of "
            f"reference)?"
        )
    return max(frac, fixed_frac)


def _extent(geo: Geometry) -> tuple[np.ndarray, np.ndarray]:
    corners = geo.corners_lps()
    return corners.min(axis=0), corners.max(axis=0)


def _fmt(v: np.ndarray) -> str:
    return "(" + ", ".join(f"{x:.1f}" for x in v) + ")"
