"""Read and write single 3D volumes (NIfTI, NRRD, MHA, DICOM series folder) with exact LPS geometry.

Everything goes through SimpleITK, so origin, spacing and direction are the ITK (LPS) values the
file encodes. Image volumes are returned as ``float32`` arrays by default; label maps keep their
integer type (:func:`read_label_volume`). Every problem raises :class:`~breastlesionseg.errors.InputError`
with a message that names the file and says what to do.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import Geometry, Volume
from .atomic import atomic_path
from .nifti_integrity import check_nifti_file

log = logging.getLogger(__name__)

#: file name endings :func:`read_volume` / :func:`write_volume` accept (lower case)
VOLUME_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: endings :func:`write_volume` writes
WRITE_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".mha")

_INTEGER_PIXEL_IDS = {
    sitk.sitkUInt8, sitk.sitkInt8, sitk.sitkUInt16, sitk.sitkInt16,
    sitk.sitkUInt32, sitk.sitkInt32, sitk.sitkUInt64, sitk.sitkInt64,
}


def volume_suffix(path: str | os.PathLike) -> str:
    """The recognised volume file ending of ``path`` (``".nii.gz"``, ``".nrrd"`` ...) or ``""``."""
    name = Path(path).name.lower()
    for suffix in VOLUME_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return ""


def volume_stem(path: str | os.PathLike) -> str:
    """File name without its volume ending (``a/b/pre.nii.gz`` -> ``pre``); folder name for folders."""
    p = Path(path)
    suffix = volume_suffix(p)
    return p.name[: -len(suffix)] if suffix else p.name


def _describe_shape_problem(path: Path, dimension: int, size: tuple[int, ...], components: int) -> str | None:
    """A message when an image is not a scalar 3D volume, else ``None``."""
    if components > 1:
        return (
            f"'{path}' is a vector image with {components} components per voxel (e.g. RGB or a multi-channel "
            f"volume) of size {tuple(size)}; DCE phases and label maps must be scalar 3D volumes. "
            f"Save each phase/channel as its own 3D file and pass them in time order."
        )
    if dimension == 2 or (dimension == 3 and min(size) == 1):
        return (
            f"'{path}' is a 2D image (size {tuple(size)}); a 3D volume with several slices is needed. "
            f"If this is one slice of a DICOM series, pass the folder that holds the whole series."
        )
    if dimension == 4:
        return (
            f"'{path}' is a 4D image (size {tuple(size)}: {size[3]} volumes of {tuple(size[:3])}); pass each phase "
            f"as its own 3D file (pre-contrast first), e.g. split it with SimpleITK "
            f"(image[:, :, :, t]) or export one file per time point."
        )
    if dimension != 3:
        return f"'{path}' is a {dimension}D image (size {tuple(size)}); a 3D volume is needed."
    return None


def _read_file_image(path: Path) -> tuple[sitk.Image, dict]:
    """Read a single-file image after checking its header (dimension, components)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        if "size is zero" in str(exc):
            raise InputError(f"'{path}' is empty: it has zero voxels along one axis ({_first_line(exc)}).") from exc
        raise InputError(
            f"cannot read '{path}' as an image: {_first_line(exc)}. Supported: NIfTI (.nii/.nii.gz), NRRD, MHA "
            f"or a folder holding one DICOM series."
        ) from exc
    dimension = reader.GetDimension()
    size = tuple(int(s) for s in reader.GetSize())
    components = int(reader.GetNumberOfComponents())
    squeeze_time = dimension == 4 and size[3] == 1 and components == 1
    if not squeeze_time:
        problem = _describe_shape_problem(path, dimension, size, components)
        if problem:
            raise InputError(problem)
    if any(s == 0 for s in size):
        raise InputError(f"'{path}' is empty: it has zero voxels (size {size}).")
    info = {"pixel_type": sitk.GetPixelIDValueAsString(reader.GetPixelID())}
    if volume_suffix(path) in (".nii", ".nii.gz"):
        check_nifti_file(path)  # truncation and NaN/Inf are invisible after SimpleITK's NIfTI reader
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"cannot read the voxels of '{path}' (truncated or corrupt file?): {_first_line(exc)}") from exc
    if squeeze_time:  # a 4D file with a single time point is a 3D volume
        image = image[:, :, :, 0]
        problem = _describe_shape_problem(path, 3, tuple(image.GetSize()), 1)
        if problem:
            raise InputError(problem)
    return image, info


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # ITK messages end with the useful part ("Could not create IO object ...")
    return lines[-1] if lines else type(exc).__name__


def read_sitk_image(path: str | os.PathLike) -> tuple[sitk.Image, dict]:
    """Read a 3D scalar image file or DICOM series folder as a SimpleITK image (native pixel type).

    Args:
        path: NIfTI/NRRD/MHA file or a folder holding exactly one DICOM series.

    Returns:
        ``(image, info)`` where ``info`` holds ``pixel_type`` (the stored type as text) and, for DICOM,
        ``dicom`` (the :class:`~breastlesionseg.io.dicom.SeriesInfo` as a dict).

    Raises:
        InputError: missing path, unreadable file, 2D / 4D / vector image, zero voxels.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"'{p}' does not exist (expected a NIfTI/NRRD/MHA file or a DICOM series folder).")
    if p.is_dir():
        from .dicom import read_dicom_series  # local import: dicom imports this module

        image, series = read_dicom_series(p)
        problem = _describe_shape_problem(p, image.GetDimension(), tuple(image.GetSize()),
                                          image.GetNumberOfComponentsPerPixel())
        if problem:
            raise InputError(problem)
        return image, {"pixel_type": image.GetPixelIDTypeAsString(), "dicom": series.to_dict()}
    if p.stat().st_size == 0:
        raise InputError(f"'{p}' is an empty file (0 bytes).")
    return _read_file_image(p)


def check_volume_values(volume: Volume, allow_constant: bool = False) -> None:
    """Raise :class:`InputError` when a volume has no voxels, non-finite voxels or (optionally) one value.

    Args:
        volume: the volume to check; its ``source`` (else ``name``) names it in the message.
        allow_constant: accept a volume whose voxels all have the same value (e.g. an empty label map).
    """
    label = volume.source or volume.name or "volume"
    arr = volume.array
    if arr.size == 0:
        raise InputError(f"'{label}' is empty: it has zero voxels (shape {arr.shape}).")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise InputError(
            f"'{label}' contains non-finite voxels ({n_nan} NaN, {n_inf} Inf of {arr.size}); "
            f"fix or re-export the image (NaN/Inf are not valid MR intensities)."
        )
    if not allow_constant:
        lo, hi = arr.min(), arr.max()
        if lo == hi:
            raise InputError(
                f"'{label}' is constant (every voxel is {lo.item()!r}); it holds no image. Is it the right file?"
            )


def read_volume(
    path: str | os.PathLike,
    name: str | None = None,
    *,
    dtype: np.dtype | type | None = np.float32,
    allow_constant: bool = False,
) -> Volume:
    """Read a 3D image volume keeping its LPS geometry exactly.

    Args:
        path: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage (``.mha``, ``.mhd``) file or
            a folder holding one DICOM series.
        name: volume name (default: the file stem).
        dtype: numpy type of the returned array (default ``float32``); ``None`` keeps the stored type
            (DICOM: after rescale slope/intercept).
        allow_constant: accept a volume with a single value (default: such a volume is an error).

    Returns:
        :class:`Volume` with array ``(z, y, x)``; ``metadata`` holds ``pixel_type`` (stored type), ``path``
        and for DICOM ``dicom`` (series description, times ...).

    Raises:
        InputError: missing/unreadable file, 2D/4D/vector image, no voxels, constant volume, NaN/Inf voxels;
            the message names the file.
    """
    p = Path(path)
    image, info = read_sitk_image(p)
    arr = sitk.GetArrayViewFromImage(image)
    arr = np.array(arr, dtype=dtype if dtype is not None else arr.dtype, copy=True)
    volume = Volume(arr, Geometry.from_sitk(image), name=name if name is not None else volume_stem(p),
                    source=str(p), metadata={"path": str(p), **info})
    check_volume_values(volume, allow_constant=allow_constant)
    log.debug("read %s: size %s spacing %s %s", p, volume.geometry.size, volume.geometry.spacing, info["pixel_type"])
    return volume


def read_label_volume(path: str | os.PathLike, name: str | None = None) -> Volume:
    """Read a label map (integer voxels, e.g. breast mask or lesion labels) keeping its integer type.

    Float files whose voxels are all whole numbers (common for NIfTI label maps) are converted to the
    smallest fitting unsigned/signed integer type.

    Raises:
        InputError: as :func:`read_volume`, or when voxels are not whole numbers.
    """
    p = Path(path)
    image, info = read_sitk_image(p)
    arr = np.array(sitk.GetArrayViewFromImage(image), copy=True)
    if image.GetPixelID() not in _INTEGER_PIXEL_IDS:
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise InputError(f"'{p}' is not a label map: its voxels are not all whole numbers ({info['pixel_type']}).")
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        arr = arr.astype(np.min_scalar_type(hi) if lo >= 0 else np.result_type(np.min_scalar_type(lo),
                                                                                np.min_scalar_type(hi)))
    volume = Volume(arr, Geometry.from_sitk(image), name=name if name is not None else volume_stem(p),
                    source=str(p), metadata={"path": str(p), **info})
    check_volume_values(volume, allow_constant=True)
    return volume


def write_volume(volume: Volume, path: str | os.PathLike, overwrite: bool = False, compress: bool = True) -> Path:
    """Write a volume atomically as NIfTI (``.nii``/``.nii.gz``), NRRD (``.nrrd``) or MetaImage (``.mha``).

    The array's dtype is kept (``bool`` is written as ``uint8``). Geometry is written exactly
    (NIfTI stores it as qform/sform in RAS, SimpleITK converts; round trip is LPS-exact to float32).

    Args:
        volume: what to write.
        path: target file; its ending picks the format.
        overwrite: replace an existing file (default: refuse).
        compress: compress the voxels (gzip) where the format allows (NRRD, MHA; ``.nii.gz`` always is).

    Returns:
        ``path``.

    Raises:
        InputError: unsupported ending, existing file without ``overwrite``, write failure.
    """
    p = Path(path)
    suffix = volume_suffix(p)
    if suffix not in WRITE_SUFFIXES:
        raise InputError(
            f"cannot write '{p}': unsupported file ending; use one of {', '.join(WRITE_SUFFIXES)}."
        )
    arr = volume.array
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    image = volume.geometry.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(arr), isVector=False))
    with atomic_path(p, overwrite=overwrite) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), useCompression=compress)
        except RuntimeError as exc:
            raise InputError(f"cannot write '{p}': {_first_line(exc)}") from exc
    log.debug("wrote %s (%s, size %s)", p, arr.dtype, volume.geometry.size)
    return p
