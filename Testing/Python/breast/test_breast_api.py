"""segment_breast_region: bad input gives clear errors; config validation; left/right split."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.breast import BreastRegionConfig, breast_volumes_ml, segment_breast_region
from breastlesionseg.breast.sides import midline_from_profile, split_sides
from breastlesionseg.errors import InputError
from breastlesionseg.geometry import Geometry, Volume


def _vol(shape_zyx, value=None, spacing=(1.0, 1.0, 2.0), name="pre"):
    g = Geometry(tuple(shape_zyx[::-1]), spacing, (0.0, 0.0, 0.0))
    arr = np.random.default_rng(0).normal(100, 5, shape_zyx).astype(np.float32) if value is None else \
        np.full(shape_zyx, value, np.float32)
    return Volume(arr, g, name=name)


def test_bad_images_raise_input_error_naming_the_image():
    with pytest.raises(InputError, match="'flat'.*3D"):
        segment_breast_region(_vol((1, 30, 30), name="flat"))
    with pytest.raises(InputError, match="constant"):
        segment_breast_region(_vol((5, 30, 30), value=7.0))
    with pytest.raises(InputError, match="'zeros'.*constant"):  # an empty (all-zero) image
        segment_breast_region(_vol((5, 30, 30), value=0.0, name="zeros"))
    nan = _vol((5, 30, 30), name="nan-img")
    nan.array[2, 3, 4] = np.nan
    with pytest.raises(InputError, match="'nan-img'.*NaN"):
        segment_breast_region(nan)
    other = Volume(np.arange(5 * 30 * 31, dtype=np.float32).reshape(5, 30, 31), Geometry((31, 30, 5), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0)),
                   name="post1")
    with pytest.raises(InputError, match="'post1'.*grid"):
        segment_breast_region([_vol((5, 30, 30)), other])
    with pytest.raises(InputError, match="no image"):
        segment_breast_region([])
    with pytest.raises(InputError, match="DCEExam"):
        segment_breast_region(np.zeros((5, 5, 5)))
    with pytest.raises(InputError, match="BreastRegionConfig"):
        segment_breast_region(_vol((5, 30, 30)), config={"method": "classical"})


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="deep"), "method"),
    (dict(working_spacing_mm=0.0), "working_spacing_mm"),
    (dict(posterior_limit_mm=-5.0), "posterior_limit_mm"),
    (dict(skin_mm=-1.0), "skin_mm"),
    (dict(body_intensity="median"), "body_intensity"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(InputError, match=match):
        BreastRegionConfig(**kwargs)


def test_volumes_ml_known_geometry():
    g = Geometry((10, 10, 10), (2.0, 1.0, 0.5), (0.0, 0.0, 0.0))  # 1 mm3 voxels
    arr = np.zeros(g.shape_zyx, np.uint8)
    arr[:5] = 1  # 500 voxels
    arr[5:7] = 2  # 200 voxels
    v = breast_volumes_ml(Volume(arr, g))
    assert v == pytest.approx({"left": 0.5, "right": 0.2, "total": 0.7})


def test_midline_profile_and_oblique_split():
    prof = np.array([0, 2, 5, 9, 9, 5, 1, 0, 1, 6, 10, 8, 3, 0], float)
    assert midline_from_profile(prof) == 7.0
    assert midline_from_profile(np.array([0, 3, 8, 9, 8, 3, 0], float)) is None  # one breast only
    # two blobs on an x-flipped grid: label 1 must be the blob at +x in LPS
    g = Geometry((40, 20, 6), (1.0, 1.0, 2.0), (20.0, 0.0, 0.0), (-1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    region = np.zeros(g.shape_zyx, bool)
    region[:, 5:15, 2:12] = True   # index x 2..11 -> LPS x 18..9 (patient's left)
    region[:, 5:15, 26:38] = True  # index x 26..37 -> LPS x -6..-17 (patient's right)
    labels, info = split_sides(region, g)
    assert np.all(labels[:, 5:15, 2:12] == 1) and np.all(labels[:, 5:15, 26:38] == 2)
    assert not info["single_breast"]
    assert -6.0 < info["midline_lps_x_mm"] < 9.0
