"""The inferior-descent limit of the chest-wall surface and the reference slice (unit tests)."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.breast.chest_wall import limit_inferior_descent, reference_slice
from breastlesionseg.breast.config import BreastRegionConfig
from breastlesionseg.errors import InputError


def test_limit_inferior_descent_caps_posterior_drift_below_the_reference():
    nz, nx = 9, 5
    y = np.full((nz, nx), 50.0)
    y[:3, 1] = 80.0  # a dip 30 voxels posterior in the three lowest slices (column 1)
    y[:2, 3] = 30.0  # an anterior move: allowed
    y[7:, 2] = 90.0  # above the reference: untouched
    y[0, 4] = np.nan  # no surface: stays NaN
    # spacing y 2 mm, z 4 mm, 0.25 mm/mm -> 0.5 voxel per slice
    out = limit_inferior_descent(y, z_ref=5, spacing_xyz=np.array([2.0, 2.0, 4.0]), max_descent_mm_per_mm=0.25)
    # column 1: slices 3, 4 stay at 50 (no drift); slice 2 -> 50 + 0.5, slice 1 -> 51.0, slice 0 -> 51.5
    np.testing.assert_allclose(out[:3, 1], [51.5, 51.0, 50.5])
    np.testing.assert_allclose(out[:2, 3], [30.0, 30.0])
    np.testing.assert_allclose(out[7:, 2], [90.0, 90.0])
    assert np.isnan(out[0, 4])
    np.testing.assert_allclose(out[3:, 0], 50.0)
    assert y[0, 1] == 80.0  # the input is not modified


def test_reference_slice_is_area_weighted_median():
    region = np.zeros((10, 4, 4), bool)
    region[2:5] = True  # 3 slices, 16 voxels each
    region[8, 0, 0] = True
    assert reference_slice(region) == 3
    assert reference_slice(np.zeros((4, 3, 3), bool)) == 0


def test_config_rejects_negative_descent():
    with pytest.raises(InputError, match="inferior_descent_mm_per_mm"):
        BreastRegionConfig(inferior_descent_mm_per_mm=-0.1)
    assert BreastRegionConfig(inferior_descent_mm_per_mm=0.0).inferior_descent_mm_per_mm == 0.0
