"""read_volume / write_volume: exact geometry round trips and clear errors on bad input."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.errors import InputError
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.io import read_label_volume, read_volume, write_volume


def _oblique(deg_z: float = 20.0, deg_x: float = 8.0) -> tuple[float, ...]:
    a, b = np.deg2rad(deg_z), np.deg2rad(deg_x)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return tuple((rz @ rx).ravel())


@pytest.fixture
def oblique_volume() -> Volume:
    geo = Geometry((11, 9, 7), (0.7, 0.8, 1.5), (12.5, -20.25, 33.0), _oblique())
    arr = np.random.default_rng(1).normal(200.0, 40.0, geo.shape_zyx).astype(np.float32)
    return Volume(arr, geo, name="phase")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_round_trip_keeps_voxels_and_oblique_geometry(tmp_path, oblique_volume, suffix):
    path = write_volume(oblique_volume, tmp_path / f"phase{suffix}")
    back = read_volume(path)
    geo, ref = back.geometry, oblique_volume.geometry
    assert geo.size == ref.size
    np.testing.assert_allclose(geo.spacing, ref.spacing, atol=1e-5)
    np.testing.assert_allclose(geo.origin, ref.origin, atol=1e-4)
    np.testing.assert_allclose(geo.direction, ref.direction, atol=1e-6)
    np.testing.assert_array_equal(back.array, oblique_volume.array)
    assert back.array.dtype == np.float32
    assert back.name == "phase" and back.source == str(path)


def test_chain_nifti_nrrd_mha_keeps_physical_point_of_every_corner(tmp_path, oblique_volume):
    vol = oblique_volume
    for suffix in (".nii.gz", ".nrrd", ".mha", ".nii.gz"):
        vol = read_volume(write_volume(vol, tmp_path / f"c{len(list(tmp_path.iterdir()))}{suffix}"))
    np.testing.assert_allclose(vol.geometry.corners_lps(), oblique_volume.geometry.corners_lps(), atol=1e-3)
    np.testing.assert_array_equal(vol.array, oblique_volume.array)


def test_write_refuses_to_overwrite_and_leaves_no_temp_files(tmp_path, oblique_volume):
    path = write_volume(oblique_volume, tmp_path / "a.nrrd")
    before = path.read_bytes()
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_volume(oblique_volume.with_array(oblique_volume.array * 2), path)
    assert path.read_bytes() == before
    write_volume(oblique_volume.with_array(oblique_volume.array * 2), path, overwrite=True)
    np.testing.assert_allclose(read_volume(path).array, oblique_volume.array * 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nrrd"]


def test_write_rejects_unknown_ending(tmp_path, oblique_volume):
    with pytest.raises(InputError, match=r"x\.png.*unsupported"):
        write_volume(oblique_volume, tmp_path / "x.png")


def test_label_volume_keeps_integer_type(tmp_path):
    geo = Geometry((9, 7, 5), (1.0, 1.0, 2.0), (0, 0, 0))
    labels = np.zeros(geo.shape_zyx, np.uint8)
    labels[1:3, 2:5, 3:6] = 2
    write_volume(Volume(labels, geo), tmp_path / "lab.nii.gz")
    back = read_label_volume(tmp_path / "lab.nii.gz")
    assert back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, labels)
    # an all-zero label map is valid (no lesion)
    write_volume(Volume(np.zeros_like(labels), geo), tmp_path / "empty.nrrd")
    assert read_label_volume(tmp_path / "empty.nrrd").array.sum() == 0
    # float files holding whole numbers become integers; fractions are refused
    write_volume(Volume(labels.astype(np.float32), geo), tmp_path / "f.nrrd")
    assert np.issubdtype(read_label_volume(tmp_path / "f.nrrd").array.dtype, np.integer)
    write_volume(Volume(labels.astype(np.float32) + 0.5, geo), tmp_path / "g.nrrd")
    with pytest.raises(InputError, match=r"g\.nrrd.*not a label map"):
        read_label_volume(tmp_path / "g.nrrd")


def test_native_dtype_is_kept_when_asked(tmp_path):
    geo = Geometry((9, 7, 5), (1.0, 1.0, 2.0), (0, 0, 0))
    arr = np.arange(np.prod(geo.shape_zyx), dtype=np.uint16).reshape(geo.shape_zyx)
    write_volume(Volume(arr, geo), tmp_path / "u.mha")
    back = read_volume(tmp_path / "u.mha", dtype=None)
    assert back.array.dtype == np.uint16
    assert back.metadata["pixel_type"] == "16-bit unsigned integer"


# -- bad input ---------------------------------------------------------------------------------------------------
def _write_sitk(image: sitk.Image, path) -> str:
    sitk.WriteImage(image, str(path))
    return str(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match=r"nope\.nii\.gz.*does not exist"):
        read_volume(tmp_path / "nope.nii.gz")


def test_unreadable_and_empty_files_are_named(tmp_path):
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(InputError, match=r"junk\.nii\.gz"):
        read_volume(junk)
    empty = tmp_path / "zero.nrrd"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"zero\.nrrd.*empty file"):
        read_volume(empty)


def test_2d_image_is_refused(tmp_path):
    path = _write_sitk(sitk.Image(13, 11, sitk.sitkFloat32) + 1.0, tmp_path / "slice.nrrd")
    with pytest.raises(InputError, match=r"slice\.nrrd.*2D image"):
        read_volume(path)
    single = sitk.Image(13, 11, 1, sitk.sitkFloat32)
    path = _write_sitk(single, tmp_path / "oneslice.nii.gz")
    with pytest.raises(InputError, match=r"oneslice\.nii\.gz.*2D image"):
        read_volume(path)


def test_4d_image_is_refused_with_advice(tmp_path):
    arr = np.random.default_rng(0).random((3, 5, 7, 9)).astype(np.float32)  # t, z, y, x
    path = _write_sitk(sitk.GetImageFromArray(arr, isVector=False), tmp_path / "dyn4d.nii.gz")
    with pytest.raises(InputError, match=r"dyn4d\.nii\.gz.*4D image.*3 volumes.*own 3D file"):
        read_volume(path)


def test_4d_image_with_one_time_point_is_read_as_3d(tmp_path):
    arr = np.random.default_rng(0).random((1, 5, 7, 9)).astype(np.float32)
    path = _write_sitk(sitk.GetImageFromArray(arr, isVector=False), tmp_path / "t1.nii.gz")
    vol = read_volume(path)
    assert vol.geometry.size == (9, 7, 5)
    np.testing.assert_array_equal(vol.array, arr[0])


def test_vector_image_is_refused(tmp_path):
    arr = np.random.default_rng(0).random((5, 7, 9, 3)).astype(np.float32)
    path = _write_sitk(sitk.GetImageFromArray(arr, isVector=True), tmp_path / "rgb.mha")
    with pytest.raises(InputError, match=r"rgb\.mha.*vector image with 3 components"):
        read_volume(path)


def test_constant_volume_is_refused(tmp_path):
    geo = Geometry((9, 7, 5), (1.0, 1.0, 2.0), (0, 0, 0))
    write_volume(Volume(np.full(geo.shape_zyx, 7.0, np.float32), geo), tmp_path / "flat.nii.gz")
    with pytest.raises(InputError, match=r"flat\.nii\.gz.*constant.*7\.0"):
        read_volume(tmp_path / "flat.nii.gz")
    assert read_volume(tmp_path / "flat.nii.gz", allow_constant=True).array.max() == 7.0


@pytest.mark.parametrize("bad, word", [(np.nan, "1 NaN"), (np.inf, "1 Inf")])
def test_non_finite_voxels_are_refused(tmp_path, bad, word):
    geo = Geometry((9, 7, 5), (1.0, 1.0, 2.0), (0, 0, 0))
    arr = np.random.default_rng(0).random(geo.shape_zyx).astype(np.float32)
    arr[2, 3, 4] = bad
    write_volume(Volume(arr, geo), tmp_path / "bad.nrrd")
    with pytest.raises(InputError, match=rf"bad\.nrrd.*non-finite.*{word}"):
        read_volume(tmp_path / "bad.nrrd")


@pytest.mark.parametrize("name, header", [
    ("empty.mha", "ObjectType = Image\nNDims = 3\nDimSize = 9 7 0\nElementSpacing = 1 1 1\n"
                  "ElementType = MET_FLOAT\nElementDataFile = LOCAL\n"),
    ("empty.nrrd", "NRRD0004\ntype: float\ndimension: 3\nspace: left-posterior-superior\nsizes: 9 7 0\n"
                   "space directions: (1,0,0) (0,1,0) (0,0,1)\nencoding: raw\nendian: little\n"
                   "space origin: (0,0,0)\n\n"),
])
def test_zero_voxel_volume_is_refused(tmp_path, name, header):
    path = tmp_path / name
    path.write_text(header)
    with pytest.raises(InputError, match=rf"{name.replace('.', r'[.]')}.*empty.*zero voxels"):
        read_volume(path)
