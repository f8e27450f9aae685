"""Canonical (LPS-aligned) model grid: same grid as before for axial exams, exact geometry for oblique ones."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.exam import DCEExam
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.inference.canonical_grid import (canonical_model_grid, is_canonical,
                                                      resample_to_canonical_model)
from breastlesionseg.inference.postprocess import resample_array
from breastlesionseg.inference.preprocess import crop_exam, model_grid

from .conftest import rotation_direction

SPACING = (1.5, 1.4, 2.0)


def _linear_field(geometry: Geometry) -> np.ndarray:
    """f(p) = 3 + 0.5 x - 0.25 y + 0.75 z (LPS mm) at the voxel centres, float32 (z, y, x)."""
    k, j, i = np.meshgrid(*[np.arange(n) for n in geometry.shape_zyx], indexing="ij")
    lps = geometry.index_to_lps(np.stack([i, j, k], axis=-1).reshape(-1, 3))
    return (3 + lps @ np.array([0.5, -0.25, 0.75])).reshape(geometry.shape_zyx).astype(np.float32)


def test_axial_crop_keeps_the_previous_model_grid():
    crop = Geometry((37, 29, 13), (0.8, 0.9, 1.7), (-20.0, 15.0, -30.0))
    assert is_canonical(crop)
    assert canonical_model_grid(crop, SPACING) == model_grid(crop, SPACING)


@pytest.mark.parametrize("deg_z, deg_x", [(20.0, 20.0), (35.0, -15.0), (90.0, 0.0)])
def test_oblique_crop_lies_inside_an_lps_aligned_grid(deg_z, deg_x):
    crop = Geometry((37, 29, 13), (0.8, 0.9, 1.7), (-20.0, 15.0, -30.0), rotation_direction(deg_z, deg_x))
    grid = canonical_model_grid(crop, SPACING)
    np.testing.assert_allclose(grid.direction_matrix, np.eye(3))
    assert grid.spacing == SPACING
    # every corner of the crop's voxel box (+-0.5 voxel) lies within the canonical grid's voxel box
    s = np.asarray(crop.size) - 0.5
    corners = np.array([[a, b, c] for a in (-0.5, s[0]) for b in (-0.5, s[1]) for c in (-0.5, s[2])])
    idx = grid.lps_to_index(crop.index_to_lps(corners))
    assert np.all(idx >= -0.5 - 1e-6) and np.all(idx <= np.asarray(grid.size) - 0.5 + 1e-6)
    # same centre
    np.testing.assert_allclose(grid.index_to_lps((np.asarray(grid.size) - 1) / 2),
                               crop.index_to_lps((np.asarray(crop.size) - 1) / 2), atol=1e-9)


def test_bad_spacing_is_refused():
    with pytest.raises(InputError, match="spacing"):
        canonical_model_grid(Geometry((5, 5, 5), (1, 1, 1), (0, 0, 0)), (1.0, 0.0, 1.0))


def test_round_trip_of_a_linear_field_is_exact_on_an_oblique_exam():
    geo = Geometry((41, 37, 19), (0.8, 0.9, 1.7), (-20.0, 15.0, -30.0), rotation_direction(20.0, 20.0))
    field = _linear_field(geo)
    exam = DCEExam([Volume(field, geo, name="pre"), Volume(field + 100.0, geo, name="post1")])
    breast = np.zeros(geo.shape_zyx, np.uint8)
    breast[4:15, 8:30, 6:35] = 1
    breast_vol = Volume(breast, geo, name="breast")
    cropped = crop_exam(exam, breast_vol, 2, margin_mm=3.0)
    model_exam, breast_model, model_geo = resample_to_canonical_model(exam, breast_vol, cropped, SPACING)
    assert is_canonical(model_geo) and model_exam.geometry == model_geo
    # forward: inside the exam the canonical phases are the linear field at their own voxel centres
    expected = _linear_field(model_geo)
    k, j, i = np.meshgrid(*[np.arange(n) for n in model_geo.shape_zyx], indexing="ij")
    idx = geo.lps_to_index(model_geo.index_to_lps(np.stack([i, j, k], axis=-1).reshape(-1, 3)))
    inside = np.all((idx >= 0) & (idx <= np.asarray(geo.size) - 1), axis=1).reshape(model_geo.shape_zyx)
    assert np.count_nonzero(inside) > 1000
    np.testing.assert_allclose(model_exam.phases[0].array[inside], expected[inside], atol=2e-3)
    np.testing.assert_allclose(model_exam.phases[1].array[inside], expected[inside] + 100.0, atol=2e-3)
    # breast mask: nearest neighbour, labels kept, volume kept within one voxel layer
    assert set(np.unique(breast_model)) <= {0, 1}
    vol_in = np.count_nonzero(breast) * geo.voxel_volume_mm3
    vol_model = np.count_nonzero(breast_model) * model_geo.voxel_volume_mm3
    assert vol_model == pytest.approx(vol_in, rel=0.25)
    # back: the model-grid field resampled onto the oblique crop grid is the field there (every crop voxel)
    back = resample_array(expected, model_geo, cropped.geometry)
    np.testing.assert_allclose(back, _linear_field(cropped.geometry), atol=2e-3)
