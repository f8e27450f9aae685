"""Read 2D images: PNG/JPEG/BMP/TIFF (Pillow) and DICOM (pydicom), RGB or gray, single or multi-frame.

The pixel size comes from, in this order: the DICOM ultrasound region calibration
(``SequenceOfUltrasoundRegions``: the largest 2D tissue region whose ``PhysicalUnitsX/YDirection`` are
centimetres, ``PhysicalDeltaX/Y`` in cm per pixel), ``PixelSpacing``, ``ImagerPixelSpacing``; none for
plain image files (areas are then in pixels only).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError
from .image2d import Image2D

log = logging.getLogger(__name__)

#: ITU-R BT.601 luma weights for RGB -> gray
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: DICOM PhysicalUnitsX/YDirection code for centimetres
ULTRASOUND_UNITS_CM = 3
#: DICOM RegionSpatialFormat code for a 2D tissue/flow region
ULTRASOUND_REGION_2D = 1
DICOM_SUFFIXES = (".dcm", ".dicom")


def to_gray(pixels: np.ndarray, source: str | Path = "image") -> np.ndarray:
    """(H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA -> (H, W) float32 luminance (alpha dropped).

    Raises:
        InputError: any other shape (names ``source``).
    """
    array = np.asarray(pixels)
    if array.ndim == 2:
        return array.astype(np.float32)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return (array[..., :3].astype(np.float32) @ LUMA_WEIGHTS).astype(np.float32)
    if array.ndim == 3 and array.shape[2] == 1:
        return array[..., 0].astype(np.float32)
    raise InputError(f"'{source}': expected a 2D gray or RGB image; got pixel array of shape {array.shape}")


def is_dicom(path: Path) -> bool:
    """True for a ``.dcm``/``.dicom`` name or a file with the DICM preamble marker."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def ultrasound_region_spacing_mm(dataset) -> tuple[float, float] | None:
    """(row_mm, column_mm) from ``SequenceOfUltrasoundRegions`` (largest 2D region in cm), else ``None``."""
    best, best_area = None, -1
    for region in getattr(dataset, "SequenceOfUltrasoundRegions", []) or []:
        units_x = int(getattr(region, "PhysicalUnitsXDirection", 0) or 0)
        units_y = int(getattr(region, "PhysicalUnitsYDirection", 0) or 0)
        if units_x != ULTRASOUND_UNITS_CM or units_y != ULTRASOUND_UNITS_CM:
            continue
        spatial = int(getattr(region, "RegionSpatialFormat", ULTRASOUND_REGION_2D) or 0)
        if spatial != ULTRASOUND_REGION_2D:
            continue
        dx, dy = float(region.PhysicalDeltaX), float(region.PhysicalDeltaY)
        if not (dx > 0 and dy > 0):
            continue
        width = int(getattr(region, "RegionLocationMaxX1", 0) or 0) - int(getattr(region, "RegionLocationMinX0", 0) or 0)
        height = int(getattr(region, "RegionLocationMaxY1", 0) or 0) - int(getattr(region, "RegionLocationMinY0", 0) or 0)
        if width * height > best_area:
            best, best_area = (abs(dy) * 10.0, abs(dx) * 10.0), width * height
    return best


def dicom_spacing_mm(dataset) -> tuple[tuple[float, float] | None, str]:
    """(spacing (row_mm, column_mm) or None, its source name) of a pydicom dataset."""
    spacing = ultrasound_region_spacing_mm(dataset)
    if spacing is not None:
        return spacing, "ultrasound_region"
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = getattr(dataset, keyword, None)
        if values is not None and len(values) == 2 and float(values[0]) > 0 and float(values[1]) > 0:
            return (float(values[0]), float(values[1])), keyword
    return None, "none"


def _select_frame(pixels: np.ndarray, dataset, frame: int | None, path: Path) -> tuple[np.ndarray, int]:
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    if frames <= 1:
        if frame not in (None, 0):
            raise InputError(f"'{path}' has a single frame; frame index {frame} does not exist")
        return pixels, 0
    index = frames // 2 if frame is None else frame
    if not 0 <= index < frames:
        raise InputError(f"'{path}' has {frames} frames; frame index {frame} is out of range 0..{frames - 1}")
    if frame is None:
        log.info("'%s' has %d frames; using the middle frame %d (choose one with a frame index)", path, frames, index)
    return pixels[index], index


def read_dicom_2d(path: Path, frame: int | None = None) -> Image2D:
    """Read one frame of a DICOM image (middle frame of a multi-frame file unless ``frame`` is given)."""
    import pydicom

    try:
        dataset = pydicom.dcmread(str(path))
        pixels = dataset.pixel_array
    except Exception as exc:  # pydicom raises many types for corrupt/unsupported files
        raise InputError(f"cannot read DICOM image '{path}': {exc}") from exc
    pixels, index = _select_frame(np.asarray(pixels), dataset, frame, path)
    gray = to_gray(pixels, path)
    slope, intercept = float(getattr(dataset, "RescaleSlope", 1) or 1), float(getattr(dataset, "RescaleIntercept", 0) or 0)
    gray = gray * slope + intercept
    if str(getattr(dataset, "PhotometricInterpretation", "")) == "MONOCHROME1":
        gray = gray.max() - gray
    spacing, spacing_source = dicom_spacing_mm(dataset)
    return Image2D(gray.astype(np.float32), spacing, path, index, spacing_source)


def read_bitmap_2d(path: Path, frame: int | None = None) -> Image2D:
    """Read PNG/JPEG/BMP/TIFF (any Pillow format; a frame of a multi-page file); no spacing."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            frames = int(getattr(image, "n_frames", 1))
            index = 0 if frame is None else frame
            if not 0 <= index < frames:
                raise InputError(f"'{path}' has {frames} frame(s); frame index {frame} is out of range")
            image.seek(index)
            if image.mode in ("P", "PA", "LA", "CMYK", "YCbCr", "HSV"):
                image = image.convert("RGB")
            pixels = np.asarray(image)
    except InputError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise InputError(f"cannot read image '{path}': {exc}") from exc
    return Image2D(to_gray(pixels, path), None, path, index, "none")


def read_image_2d(path: str | Path, frame: int | None = None) -> Image2D:
    """Read a 2D image file as grayscale with its pixel spacing when the file records one.

    Args:
        path: PNG/JPEG/BMP/TIFF or DICOM file.
        frame: frame of a multi-frame file (default: the middle frame of a DICOM cine, the first page otherwise).
    Raises:
        InputError: missing, unreadable or not a 2D image (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file '{path}' does not exist or is not a file")
    image = read_dicom_2d(path, frame) if is_dicom(path) else read_bitmap_2d(path, frame)
    if min(image.pixels.shape) < 8:
        raise InputError(f"'{path}': image of {image.pixels.shape[1]} x {image.pixels.shape[0]} px is too small")
    if not np.isfinite(image.pixels).all():
        raise InputError(f"'{path}': image holds NaN or infinite values")
    return image


def as_image2d(image: str | Path | np.ndarray | Image2D, frame: int | None = None,
               spacing_mm: tuple[float, float] | None = None) -> Image2D:
    """Read a path, wrap an (H, W) / (H, W, 3|4) array, or pass an :class:`Image2D` through."""
    if isinstance(image, Image2D):
        return image
    if isinstance(image, (str, Path)):
        return read_image_2d(image, frame)
    array = np.asarray(image)
    if array.ndim not in (2, 3) or min(array.shape[:2]) < 8:
        raise InputError(f"image array must be (H, W) or (H, W, 3) with sides >= 8 px; got shape {array.shape}")
    gray = to_gray(array, "image array")
    if not np.isfinite(gray).all():
        raise InputError("image array holds NaN or infinite values")
    return Image2D(gray, spacing_mm, Path("<array>"), 0, "given" if spacing_mm else "none")


def read_mask_2d(path: str | Path) -> np.ndarray:
    """Read a lesion mask image as (H, W) bool (non-zero = lesion)."""
    return read_image_2d(path).pixels > 0
