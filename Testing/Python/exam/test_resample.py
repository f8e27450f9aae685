"""resample_to_grid and overlap checks: physical-space resampling reproduces analytic patterns."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.errors import GeometryError, InputError
from breastlesionseg.exam import overlap_fraction, require_overlap, resample_to_grid
from breastlesionseg.geometry import Geometry, Volume

GRADIENT = np.array([0.5, -1.25, 2.0])  # intensity per mm along L, P, S


def _linear_field(geo: Geometry) -> np.ndarray:
    """f(p) = 100 + GRADIENT . p at every voxel centre, shape (z, y, x)."""
    k, j, i = np.meshgrid(*[np.arange(n) for n in geo.shape_zyx], indexing="ij")
    lps = geo.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))
    return (100.0 + lps @ GRADIENT).astype(np.float32)


def _rot_z(deg: float) -> tuple[float, ...]:
    a = np.deg2rad(deg)
    return tuple(np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]).ravel())


def test_linear_resampling_reproduces_a_linear_field_on_another_grid():
    target = Geometry((13, 11, 9), (1.0, 1.0, 1.5), (0.0, 0.0, 0.0), _rot_z(10))
    # source: finer, shifted, other orientation, covering the target with margin
    source = Geometry((41, 41, 23), (0.8, 0.7, 1.2), (-8.3, -6.1, -5.2), _rot_z(-5))
    out = resample_to_grid(Volume(_linear_field(source), source, name="post1", source="p1.nii.gz"), target)
    assert out.geometry == target and out.name == "post1" and out.source == "p1.nii.gz"
    np.testing.assert_allclose(out.array, _linear_field(target), atol=2e-3)


def test_nearest_keeps_labels_and_dtype_and_outside_gets_default():
    src = Geometry((9, 9, 9), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    labels = np.zeros(src.shape_zyx, np.uint8)
    labels[2:5, 3:6, 4:7] = 3
    tgt = Geometry((21, 21, 21), (1.0, 1.0, 1.0), (-2.0, 0.0, 0.0))
    out = resample_to_grid(Volume(labels, src), tgt, "nearest", default_value=0)
    assert out.array.dtype == np.uint8
    assert set(np.unique(out.array)) == {0, 3}
    # each 2 mm voxel becomes ~8 1 mm voxels: 27 labelled source voxels -> 27 * 8 = 216 +- boundary ties
    assert abs(int((out.array == 3).sum()) - 216) <= 60
    # a target point inside the labelled block: LPS (10, 8, 6) -> source index (5, 4, 3)
    idx = np.round(tgt.lps_to_index([10.0, 8.0, 6.0])).astype(int)
    assert out.array[idx[2], idx[1], idx[0]] == 3
    # target voxels beyond the source (x < -1 mm) are default
    assert np.all(out.array[:, :, 0] == 0)


def test_same_grid_is_a_copy():
    geo = Geometry((5, 7, 9), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    vol = Volume(np.random.default_rng(0).random(geo.shape_zyx).astype(np.float32), geo)
    out = resample_to_grid(vol, geo)
    np.testing.assert_array_equal(out.array, vol.array)
    assert out.array is not vol.array


def test_unknown_interpolator_is_named():
    geo = Geometry((5, 7, 9), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="interpolator.*'cubic'"):
        resample_to_grid(Volume(np.zeros(geo.shape_zyx, np.float32), geo), geo, "cubic")


def test_overlap_fraction_of_half_shifted_grid():
    a = Geometry((10, 10, 10), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    b = Geometry((10, 10, 10), (1.0, 1.0, 1.0), (5.0, 0.0, 0.0))
    # b spans x in [4.5, 14.5], a spans [-0.5, 9.5]: half of b lies inside a
    assert overlap_fraction(b, a, samples_per_axis=21) == pytest.approx(0.5, abs=0.06)
    far = Geometry((10, 10, 10), (1.0, 1.0, 1.0), (500.0, 0.0, 0.0))
    assert overlap_fraction(far, a) == 0.0
    with pytest.raises(GeometryError, match=r"'far\.nii'.*'pre\.nii'.*do not overlap"):
        require_overlap(Volume(np.zeros(far.shape_zyx), far, source="far.nii"),
                        Volume(np.zeros(a.shape_zyx), a, source="pre.nii"))


def test_bool_mask_resamples_to_bool():
    src = Geometry((5, 5, 5), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    mask = np.zeros(src.shape_zyx, bool)
    mask[1:3, 1:3, 1:3] = True
    out = resample_to_grid(Volume(mask, src), Geometry((9, 9, 9), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0)), "nearest")
    assert out.array.dtype == np.bool_
    # 2x2x2 voxels of 1 mm -> centres 1..2 mm; the 0.5 mm grid points within [0.5, 2.5) are True: 4 per axis
    assert int(out.array.sum()) == 4**3
