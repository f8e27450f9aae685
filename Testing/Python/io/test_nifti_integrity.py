"""Truncated, corrupt and NaN/Inf NIfTI files are refused before SimpleITK turns the damage into zeros."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.errors import InputError
from breastlesionseg.io import read_label_volume, read_volume
from breastlesionseg.io.nifti_integrity import check_nifti_file, parse_nifti_header


def _write(path, array):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.8, 1.3))
    image.SetOrigin((-12.0, 3.5, 40.0))
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture
def noise():
    return np.random.default_rng(14).normal(200.0, 25.0, (11, 13, 17))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_half_file_is_refused_as_truncated(tmp_path, noise, suffix, dtype):
    whole = _write(tmp_path / f"whole{suffix}", noise.astype(dtype))
    raw = whole.read_bytes()
    half = tmp_path / f"half{suffix}"
    half.write_bytes(raw[: len(raw) // 2])
    assert read_volume(whole).array.shape == (11, 13, 17)
    with pytest.raises(InputError, match="truncated") as err:
        read_volume(half)
    assert str(half) in str(err.value)
    with pytest.raises(InputError, match="truncated"):
        read_label_volume(half)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_nan_and_inf_voxels_are_counted(tmp_path, noise, suffix):
    data = noise.astype(np.float32)
    data[0, 0, :5] = np.nan
    data[3, 4, 5] = np.inf
    data[4, 4, 4] = -np.inf
    path = _write(tmp_path / f"nan{suffix}", data)
    assert np.isfinite(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).all()  # what the reader alone gives
    with pytest.raises(InputError, match=r"5 NaN, 2 Inf") as err:
        read_volume(path)
    assert str(path) in str(err.value)


def test_all_nan_volume_is_not_called_constant(tmp_path):
    path = _write(tmp_path / "allnan.nii.gz", np.full((5, 7, 9), np.nan, dtype=np.float64))
    with pytest.raises(InputError, match=r"315 NaN, 0 Inf"):
        read_volume(path)


def test_multi_member_gzip_and_complete_float_file_pass(tmp_path, noise):
    plain = _write(tmp_path / "v.nii", noise.astype(np.float32))
    raw = plain.read_bytes()
    multi = tmp_path / "multi.nii.gz"
    multi.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))  # valid gzip, trailer = 2nd member
    check_nifti_file(multi)
    np.testing.assert_allclose(read_volume(multi).array, noise.astype(np.float32))
    layout = parse_nifti_header(raw[:540])
    assert layout.voxel_bytes == 11 * 13 * 17 * 4 and layout.expected_bytes <= len(raw)


def test_corrupt_gzip_is_refused(tmp_path, noise):
    path = _write(tmp_path / "c.nii.gz", noise.astype(np.float32))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="corrupt|truncated|cannot read"):
        read_volume(path)
