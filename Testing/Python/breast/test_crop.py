"""Optimized-volume crop: exact inverse, physical geometry (oblique too), multiples, margins, padding."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from breastlesionseg.breast import CropBox, compute_crop
from breastlesionseg.errors import GeometryError, InputError
from breastlesionseg.geometry import Geometry, Volume


def _oblique_geometry(size=(37, 41, 23), spacing=(0.7, 0.9, 2.1)) -> Geometry:
    rot = Rotation.from_euler("xyz", [12.0, -7.0, 25.0], degrees=True).as_matrix()
    return Geometry(size, spacing, (-31.5, 12.25, 7.0), tuple(rot.ravel()))


def _mask(geometry: Geometry, box_zyx) -> Volume:
    arr = np.zeros(geometry.shape_zyx, np.uint8)
    arr[box_zyx] = 1
    return Volume(arr, geometry, name="mask")


def test_crop_uncrop_exact_inverse_and_multiples():
    g = Geometry((37, 41, 23), (0.7, 0.8, 2.0), (1.0, 2.0, 3.0))
    mask = _mask(g, (slice(5, 9), slice(10, 20), slice(12, 30)))
    box = compute_crop(mask, margin_mm=4.0, multiple=8)
    assert all(s % 8 == 0 for s in box.shape_zyx)
    assert not box.padded
    rng = np.random.default_rng(3)
    x = rng.normal(size=g.shape_zyx).astype(np.float32)
    c = box.crop(x)
    assert c.shape == box.shape_zyx
    back = box.uncrop(c, full_shape=g.shape_zyx, fill=-7)
    inside = np.zeros(g.shape_zyx, bool)
    inside[box.inside_slices] = True
    np.testing.assert_array_equal(back[inside], x[inside])
    assert np.all(back[~inside] == -7)
    # channels-first arrays crop the same way
    xc = np.stack([x, 2 * x])
    np.testing.assert_array_equal(box.crop(xc)[1], 2 * c)
    np.testing.assert_array_equal(box.uncrop(box.crop(xc))[:, inside], xc[:, inside])
    assert box.fraction_kept == pytest.approx(np.prod(box.shape_zyx) / np.prod(g.shape_zyx))


@pytest.mark.parametrize("margin_mm", [0.0, 3.0, 16.0])
def test_margin_respected_per_axis_in_mm(margin_mm):
    g = Geometry((120, 110, 60), (0.75, 0.9, 1.6), (0.0, 0.0, 0.0))
    mask = _mask(g, (slice(20, 31), slice(40, 61), slice(45, 71)))
    box = compute_crop(mask, margin_mm=margin_mm, multiple=16)
    lo = (20, 40, 45)
    hi = (31, 61, 71)
    sp_zyx = (1.6, 0.9, 0.75)
    for a in range(3):
        m = math.ceil(margin_mm / sp_zyx[a] - 1e-9)
        assert box.start_zyx[a] <= lo[a] - m
        assert box.stop_zyx[a] >= hi[a] + m
        assert box.shape_zyx[a] % 16 == 0
        # no more than one multiple of slack beyond the margin box
        assert box.shape_zyx[a] - (hi[a] - lo[a] + 2 * m) < 16


def test_margin_clipped_at_image_border_and_min_size():
    g = Geometry((64, 64, 40), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    mask = _mask(g, (slice(0, 3), slice(60, 64), slice(0, 5)))
    box = compute_crop(mask, margin_mm=10.0, multiple=16, min_size=(32, 16, 16))
    assert box.start_zyx[0] == 0 and box.shape_zyx[0] == 32
    assert box.stop_zyx[1] == 64 and box.shape_zyx[1] == 16
    assert box.start_zyx[2] == 0 and box.shape_zyx[2] == 16
    assert not box.padded


def test_image_smaller_than_multiple_pads():
    g = Geometry((45, 120, 21), (0.664, 0.664, 2.1), (0.0, 0.0, 0.0))  # the pyradiomics breast crop's grid
    mask = _mask(g, (slice(8, 11), slice(64, 76), slice(21, 30)))
    box = compute_crop(mask, margin_mm=16.0, multiple=32)
    assert box.padded
    # z: 21 slices < 32 -> padded to 32; y: 64..76 +- 25 voxels -> 62 -> 64 (fits); x: 45 < 64 -> padded
    assert box.shape_zyx == (32, 64, 64)
    assert box.start_zyx[0] < 0 and box.stop_zyx[0] > 21 and box.start_zyx[2] < 0 and box.stop_zyx[2] > 45
    x = np.arange(np.prod(g.shape_zyx), dtype=np.int32).reshape(g.shape_zyx)
    c = box.crop(x, fill=-1)
    assert c.shape == (32, 64, 64)
    assert (c == -1).sum() == 32 * 64 * 64 - 21 * 64 * 45  # image voxels kept once, the rest is padding
    back = box.uncrop(c, fill=-5)
    inside = np.zeros(g.shape_zyx, bool)
    inside[box.inside_slices] = True
    np.testing.assert_array_equal(back[inside], x[inside])
    assert box.fraction_kept == pytest.approx(64 / 120)
    # the padded crop's geometry still maps its voxel (0, 0, 0) to the right physical point
    np.testing.assert_allclose(box.geometry(g).origin, g.index_to_lps(np.array(box.start_zyx[::-1], float)))


@pytest.mark.parametrize("oblique", [False, True])
def test_crop_geometry_maps_voxel_centres_to_same_lps(oblique):
    g = _oblique_geometry() if oblique else Geometry((37, 41, 23), (0.7, 0.9, 2.1), (-31.5, 12.25, 7.0))
    mask = _mask(g, (slice(4, 9), slice(10, 25), slice(6, 20)))
    box = compute_crop(mask, margin_mm=2.0, multiple=4)
    cg = box.geometry(g)
    assert cg.size == tuple(box.shape_zyx[::-1])
    assert cg.spacing == g.spacing and cg.direction == g.direction
    rng = np.random.default_rng(0)
    local = np.stack([rng.integers(0, n, 50) for n in cg.size], axis=1).astype(float)  # (i, j, k) in the crop
    full = local + np.array(box.start_zyx[::-1], dtype=float)
    np.testing.assert_allclose(cg.index_to_lps(local), g.index_to_lps(full), atol=1e-9)
    # and through crop_volume: the same voxel value sits at the same LPS point
    vals = np.arange(np.prod(g.shape_zyx), dtype=np.float64).reshape(g.shape_zyx)
    cv = box.crop_volume(Volume(vals, g))
    i, j, k = 3, 5, 2
    p = cv.geometry.index_to_lps(np.array([i, j, k], float))
    fi, fj, fk = np.round(g.lps_to_index(p)).astype(int)
    assert cv.array[k, j, i] == vals[fk, fj, fi]


def test_roundtrip_dict():
    box = CropBox((-2, 0, 3), (30, 16, 19), (26, 20, 25))
    assert CropBox.from_dict(box.to_dict()) == box


def test_bad_inputs():
    g = Geometry((10, 11, 12), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    empty = Volume(np.zeros(g.shape_zyx, np.uint8), g, name="empty")
    with pytest.raises(InputError, match="empty"):
        compute_crop(empty)
    mask = _mask(g, (slice(2, 5), slice(2, 5), slice(2, 5)))
    with pytest.raises(InputError, match="margin_mm"):
        compute_crop(mask, margin_mm=-1)
    with pytest.raises(InputError, match="multiple"):
        compute_crop(mask, multiple=0)
    with pytest.raises(InputError, match="Volume"):
        compute_crop(mask.array)
    box = compute_crop(mask, multiple=1)
    with pytest.raises(GeometryError, match="shape"):
        box.crop(np.zeros((12, 11, 9)))
    with pytest.raises(GeometryError, match="shape"):
        box.uncrop(np.zeros((2, 2, 2)))
    with pytest.raises(GeometryError):
        box.geometry(Geometry((9, 11, 12), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)))
    with pytest.raises(InputError, match="empty along axis"):
        CropBox((0, 0, 5), (4, 4, 5), (10, 10, 10))
