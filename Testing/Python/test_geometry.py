"""Geometry / Volume container tests (LPS conventions, matrices, round trips)."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.geometry import Geometry, Volume


def _oblique_direction(deg: float = 20.0) -> tuple[float, ...]:
    a = np.deg2rad(deg)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return tuple(rot.ravel())


def test_index_to_lps_matches_sitk_for_oblique_grid():
    geo = Geometry((7, 5, 3), (0.7, 0.8, 2.5), (10.0, -20.0, 30.0), _oblique_direction())
    img = geo.reference_image()
    for ijk in [(0, 0, 0), (6, 4, 2), (3, 1, 2)]:
        np.testing.assert_allclose(geo.index_to_lps(ijk), img.TransformIndexToPhysicalPoint(ijk), atol=1e-9)
        np.testing.assert_allclose(geo.lps_to_index(geo.index_to_lps(ijk)), ijk, atol=1e-9)


def test_ras_matrix_flips_x_and_y():
    geo = Geometry((4, 4, 4), (1.0, 2.0, 3.0), (5.0, 6.0, 7.0))
    ras = geo.ijk_to_ras_matrix()
    np.testing.assert_allclose(ras[:3, 3], [-5.0, -6.0, 7.0])
    np.testing.assert_allclose(np.diag(ras)[:3], [-1.0, -2.0, 3.0])


def test_volume_sitk_round_trip_keeps_voxels_and_geometry():
    geo = Geometry((9, 7, 5), (0.75, 0.75, 1.1), (-100.0, 50.0, 3.0), _oblique_direction(-33))
    arr = np.random.default_rng(0).normal(size=geo.shape_zyx).astype(np.float32)
    vol = Volume(arr, geo, name="x")
    back = Volume.from_sitk(vol.to_sitk())
    assert back.geometry.same_grid(geo, atol_mm=1e-9, atol_dir=1e-12)
    np.testing.assert_array_equal(back.array, arr)
    assert Geometry.from_dict(geo.to_dict()) == geo


def test_geometry_validation_names_the_problem():
    with pytest.raises(ValueError, match="spacing"):
        Geometry((3, 3, 3), (1.0, 0.0, 1.0), (0, 0, 0))
    with pytest.raises(ValueError, match="does not match geometry"):
        Volume(np.zeros((3, 3, 4)), Geometry((3, 3, 3), (1, 1, 1), (0, 0, 0)))


def test_orientation_code_identity_is_lps():
    assert Geometry((2, 2, 2), (1, 1, 1), (0, 0, 0)).orientation_code() == "LPS"


def test_with_array_keeps_name_source_and_a_copy_of_metadata():
    g = Geometry((5, 4, 3), (0.7, 0.7, 2.0), (1.0, 2.0, 3.0))
    v = Volume(np.zeros((3, 4, 5), np.float32), g, name="post1", source="/x/post1.nii.gz",
               metadata={"acquisition_time_s": 91.5})
    w = v.with_array(np.ones((3, 4, 5), np.float32))
    assert (w.name, w.source, w.metadata) == ("post1", "/x/post1.nii.gz", {"acquisition_time_s": 91.5})
    assert w.geometry is v.geometry and float(w.array.sum()) == 60.0
    w.metadata["acquisition_time_s"] = 0.0
    assert v.metadata["acquisition_time_s"] == 91.5  # independent copy
    assert v.with_array(v.array, name="sub1").name == "sub1"
