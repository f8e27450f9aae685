"""2D image reading: PNG/JPEG/BMP gray and RGB, DICOM with ultrasound region calibration, multi-frame, errors."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from breastlesionseg.errors import InputError
from breastlesionseg.imaging2d.image_io import LUMA_WEIGHTS, as_image2d, read_image_2d, to_gray
from breastlesionseg.imaging2d.synthetic_dicom import write_ultrasound_dicom


def _pattern(height=37, width=53, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(height, width), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_lossless_gray_round_trip(tmp_path, suffix):
    pixels = _pattern()
    path = tmp_path / f"img{suffix}"
    Image.fromarray(pixels).save(path)
    image = read_image_2d(path)
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))
    assert image.spacing_mm is None and image.pixel_area_mm2 is None
    assert (image.height_px, image.width_px) == (37, 53)


def test_rgb_png_becomes_luminance(tmp_path):
    rgb = np.stack([_pattern(seed=s) for s in range(3)], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    image = read_image_2d(tmp_path / "rgb.png")
    np.testing.assert_allclose(image.pixels, rgb.astype(np.float32) @ LUMA_WEIGHTS, atol=1e-3)


def test_jpeg_is_read_close_to_the_original(tmp_path):
    pixels = np.tile(np.linspace(0, 255, 53, dtype=np.uint8), (37, 1))
    Image.fromarray(pixels).save(tmp_path / "img.jpg", quality=95)
    assert np.abs(read_image_2d(tmp_path / "img.jpg").pixels - pixels).mean() < 3


def test_unreadable_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match="broken.png"):
        read_image_2d(bad)
    with pytest.raises(InputError, match="absent.png"):
        read_image_2d(tmp_path / "absent.png")


def test_to_gray_rejects_other_shapes():
    with pytest.raises(InputError, match="shape"):
        to_gray(np.zeros((4, 4, 5)), "x")


def _ultrasound_dicom(path, pixels, frames=1, photometric="MONOCHROME2"):
    return write_ultrasound_dicom(path, pixels, (0.0125, 0.02), photometric)


def test_dicom_ultrasound_region_calibration_gives_spacing_in_mm(tmp_path):
    pixels = _pattern(41, 29)
    image = read_image_2d(_ultrasound_dicom(tmp_path / "us.dcm", pixels))
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))
    assert image.spacing_mm == pytest.approx((0.2, 0.125))  # (row = DeltaY, column = DeltaX) cm -> mm
    assert image.spacing_source == "ultrasound_region"
    assert image.pixel_area_mm2 == pytest.approx(0.025)


def test_dicom_multiframe_frame_choice_and_range(tmp_path):
    frames = np.stack([np.full((20, 24), 10 * (k + 1), dtype=np.uint8) for k in range(5)])
    path = _ultrasound_dicom(tmp_path / "cine.dcm", frames, frames=5)
    assert read_image_2d(path, frame=3).pixels[0, 0] == 40
    middle = read_image_2d(path)
    assert middle.frame_index == 2 and middle.pixels[0, 0] == 30
    with pytest.raises(InputError, match="out of range"):
        read_image_2d(path, frame=5)


def test_dicom_rgb_becomes_luminance(tmp_path):
    rgb = np.stack([_pattern(16, 18, seed=s) for s in range(3)], axis=-1)
    image = read_image_2d(_ultrasound_dicom(tmp_path / "rgb.dcm", rgb, photometric="RGB"))
    np.testing.assert_allclose(image.pixels, rgb.astype(np.float32) @ LUMA_WEIGHTS, atol=1e-3)


def test_dicom_without_calibration_falls_back_to_pixel_spacing(tmp_path):
    import pydicom

    path = _ultrasound_dicom(tmp_path / "ps.dcm", _pattern(12, 14))
    ds = pydicom.dcmread(path)
    del ds.SequenceOfUltrasoundRegions
    ds.PixelSpacing = [0.3, 0.4]
    ds.save_as(path)
    image = read_image_2d(path)
    assert image.spacing_mm == pytest.approx((0.3, 0.4)) and image.spacing_source == "PixelSpacing"


def test_as_image2d_wraps_arrays_and_refuses_bad_ones():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 255, size=(17, 23, 3)).astype(np.uint8)
    picture = as_image2d(rgb, spacing_mm=(0.1, 0.2))
    assert picture.pixels.shape == (17, 23) and picture.spacing_mm == (0.1, 0.2)
    assert as_image2d(picture) is picture
    with pytest.raises(InputError, match="sides >= 8 px"):
        as_image2d(np.zeros((5, 40)))
    bad = np.ones((12, 12), dtype=np.float32)
    bad[3, 4] = np.nan
    with pytest.raises(InputError, match="NaN"):
        as_image2d(bad)
