"""Fixtures for the metrics tests: small anisotropic / oblique grids and synthetic objects."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.geometry import Geometry


def _rotation(angle_rad: float = 0.35, axis=(0.3, -0.2, 1.0)) -> tuple[float, ...]:
    return tuple(sitk.VersorTransform(tuple(float(a) for a in axis), float(angle_rad)).GetMatrix())


def _sphere(geometry: Geometry, centre_ijk, radius_mm: float) -> np.ndarray:
    z, y, x = np.indices(geometry.shape_zyx)
    ijk = np.stack([x, y, z], axis=-1).astype(float)
    centre = geometry.index_to_lps(np.asarray(centre_ijk, dtype=float))
    dist = np.linalg.norm(geometry.index_to_lps(ijk) - centre, axis=-1)
    return (dist <= radius_mm).astype(np.uint8)


@pytest.fixture
def rotation() -> Callable[..., tuple[float, ...]]:
    """``rotation(angle_rad, axis)`` -> row-major 3x3 proper rotation."""
    return _rotation


@pytest.fixture
def sphere() -> Callable[..., np.ndarray]:
    """``sphere(geometry, centre_ijk, radius_mm)`` -> (z, y, x) uint8 digital sphere (voxel centres inside)."""
    return _sphere


@pytest.fixture
def oblique_grid() -> Geometry:
    """21 x 19 x 15 voxels, anisotropic 0.6 x 0.7 x 1.1 mm, rotated, off-centre origin."""
    return Geometry((21, 19, 15), (0.6, 0.7, 1.1), (-12.5, 30.25, 7.0), _rotation())


@pytest.fixture
def axial_grid() -> Geometry:
    """Identity-direction anisotropic grid 23 x 17 x 13, 0.7 x 0.8 x 1.5 mm."""
    return Geometry((23, 17, 13), (0.7, 0.8, 1.5), (10.0, -20.0, 5.0))
