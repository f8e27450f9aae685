"""The phantom's image grid and the physical (LPS) position of every voxel.

The grid is centred on ``config.fov_center_lps_mm`` and rotated by the configured oblique direction
about that centre, so every grid samples the same physical patient.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import Geometry
from .config import PhantomConfig


def phantom_geometry(config: PhantomConfig) -> Geometry:
    """The LPS grid of a phantom: size, spacing and direction from ``config``, centred on the FOV centre."""
    size = np.asarray(config.size, dtype=float)
    spacing = np.asarray(config.spacing_mm, dtype=float)
    d = config.direction_matrix
    centre = np.asarray(config.fov_center_lps_mm, dtype=float)
    origin = centre - d @ (spacing * (size - 1) / 2.0)
    return Geometry(tuple(config.size), tuple(spacing), tuple(origin), tuple(d.ravel()))


@dataclass
class VoxelCoordinates:
    """LPS coordinates (mm) of every voxel centre, each an array of shape (z, y, x) float32."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    @classmethod
    def of(cls, geometry: Geometry) -> "VoxelCoordinates":
        """Compute the coordinates of ``geometry``'s voxel centres (broadcast sums, no big matmul)."""
        m = geometry.direction_matrix * np.asarray(geometry.spacing)[None, :]
        nx, ny, nz = geometry.size
        i = np.arange(nx, dtype=np.float32)[None, None, :]
        j = np.arange(ny, dtype=np.float32)[None, :, None]
        k = np.arange(nz, dtype=np.float32)[:, None, None]
        out = []
        for row in range(3):
            a, b, c = (np.float32(v) for v in m[row])
            o = np.float32(geometry.origin[row])
            arr = np.empty(geometry.shape_zyx, dtype=np.float32)
            arr[...] = (o + a * i) + (b * j + c * k)
            out.append(arr)
        return cls(*out)


def bbox_slices(geometry: Geometry, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
    """(z, y, x) slices of the grid covering the LPS box [lo, hi] (None when outside the grid)."""
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    idx = geometry.lps_to_index(corners)
    i0 = np.floor(idx.min(axis=0)).astype(int) - 1
    i1 = np.ceil(idx.max(axis=0)).astype(int) + 2
    size = np.asarray(geometry.size)
    i0 = np.clip(i0, 0, size)
    i1 = np.clip(i1, 0, size)
    if np.any(i1 <= i0):
        return None
    return (slice(i0[2], i1[2]), slice(i0[1], i1[1]), slice(i0[0], i1[0]))
