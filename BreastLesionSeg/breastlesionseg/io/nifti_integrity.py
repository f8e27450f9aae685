"""Completeness and finiteness of NIfTI files, checked from the raw bytes before SimpleITK reads them.

SimpleITK's NIfTI reader fills the missing part of a truncated ``.nii`` / ``.nii.gz`` with zeros and turns
NaN/Inf voxels of float images into 0, so neither problem is visible in the array it returns. This module
reads the NIfTI-1/-2 header itself (no extra dependency) and

* refuses a file that holds fewer voxel bytes than its header describes (``.nii``: file size; ``.nii.gz``:
  the gzip stream must end properly and hold every byte; the gzip trailer's length field makes the check
  free for complete integer files),
* counts NaN and Inf voxels of float32/float64 files in the stored data.
"""
from __future__ import annotations

import gzip
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

#: NIfTI datatype code -> numpy type (only the float types are scanned for NaN/Inf)
_FLOAT_TYPES = {16: np.float32, 64: np.float64}
_CHUNK_BYTES = 16 << 20


@dataclass(frozen=True)
class NiftiLayout:
    """Where the voxels of a single-file NIfTI are and how many bytes they take.

    Attributes:
        voxel_offset_bytes: byte offset of the first voxel (``vox_offset``).
        voxel_bytes: bytes of voxel data the header describes (voxels x bitpix / 8).
        datatype: NIfTI datatype code (16 = float32, 64 = float64, 4 = int16 ...).
        byte_order: ``"<"`` or ``">"``.
    """

    voxel_offset_bytes: int
    voxel_bytes: int
    datatype: int
    byte_order: str

    @property
    def expected_bytes(self) -> int:
        """Uncompressed size of a complete file (header + extensions + voxels)."""
        return self.voxel_offset_bytes + self.voxel_bytes


def parse_nifti_header(raw: bytes) -> NiftiLayout | None:
    """The voxel layout from the first 540 bytes of a NIfTI-1 or NIfTI-2 single file (``None``: not one)."""
    for order in "<>":
        if len(raw) >= 348 and struct.unpack(order + "i", raw[:4])[0] == 348 and raw[344:347] == b"n+1":
            dims = struct.unpack(order + "8h", raw[40:56])
            datatype, bitpix = struct.unpack(order + "2h", raw[70:74])
            offset = int(struct.unpack(order + "f", raw[108:112])[0])
            return _layout(dims, datatype, bitpix, max(offset, 352), order)
        if len(raw) >= 540 and struct.unpack(order + "i", raw[:4])[0] == 540 and raw[4:7] == b"n+2":
            datatype, bitpix = struct.unpack(order + "2h", raw[12:16])
            dims = struct.unpack(order + "8q", raw[16:80])
            offset = struct.unpack(order + "q", raw[168:176])[0]
            return _layout(dims, datatype, bitpix, max(offset, 544), order)
    return None


def _layout(dims: tuple[int, ...], datatype: int, bitpix: int, offset: int, order: str) -> NiftiLayout | None:
    ndim = dims[0]
    if not 1 <= ndim <= 7 or bitpix <= 0 or bitpix % 8:
        return None
    n_voxels = int(np.prod([max(int(d), 1) for d in dims[1:ndim + 1]], dtype=np.int64))
    return NiftiLayout(int(offset), n_voxels * bitpix // 8, int(datatype), order)


def check_nifti_file(path: str | os.PathLike) -> None:
    """Raise :class:`InputError` when a ``.nii`` / ``.nii.gz`` file is truncated, corrupt or holds NaN/Inf.

    Files that are not single-file NIfTI (other formats, ``.hdr``/``.img`` pairs, unreadable headers) are left
    to the image reader, which gives its own message.

    Raises:
        InputError: naming the file and saying "truncated" (with the missing share), "corrupt", or the count of
            NaN and Inf voxels.
    """
    p = Path(path)
    gzipped = p.name.lower().endswith(".gz")
    try:
        with (gzip.open(p, "rb") if gzipped else open(p, "rb")) as f:
            layout = parse_nifti_header(f.read(540))
    except (OSError, EOFError, zlib.error):
        return  # not a readable NIfTI header: the image reader explains
    if layout is None:
        return
    scan_floats = layout.datatype in _FLOAT_TYPES
    if not gzipped:
        size = p.stat().st_size
        if size < layout.expected_bytes:
            raise _truncated(p, size - layout.voxel_offset_bytes, layout)
        if scan_floats:
            data = np.memmap(p, dtype=np.dtype(_FLOAT_TYPES[layout.datatype]).newbyteorder(layout.byte_order),
                             mode="r", offset=layout.voxel_offset_bytes,
                             shape=(layout.voxel_bytes // np.dtype(_FLOAT_TYPES[layout.datatype]).itemsize,))
            _raise_non_finite(p, *_count_non_finite(data))
        return
    if not scan_floats and _gzip_trailer_size(p) == layout.expected_bytes % (1 << 32):
        return  # the gzip trailer records the full length: complete (the CRC is checked by the reader)
    _scan_gzip(p, layout, scan_floats)


def _gzip_trailer_size(path: Path) -> int:
    """ISIZE of the last gzip member: the uncompressed length modulo 2**32 (garbage when truncated)."""
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return struct.unpack("<I", f.read(4))[0]


def _decompressed_chunks(path: Path):
    """Yield the decompressed bytes of every gzip member in turn.

    Raises:
        EOFError: the file ends inside a gzip member (truncated).
        zlib.error: the compressed data is corrupt.
    """
    inflater = zlib.decompressobj(wbits=31)
    in_member = True
    with open(path, "rb") as f:
        while raw := f.read(_CHUNK_BYTES // 4):
            while raw and in_member:
                yield inflater.decompress(raw)
                raw = b""
                if inflater.eof:  # end of a member: what follows may start another one (or be zero padding)
                    raw = inflater.unused_data
                    in_member = bool(raw.strip(b"\0"))
                    inflater = zlib.decompressobj(wbits=31)
            if not in_member and raw.strip(b"\0"):
                inflater, in_member = zlib.decompressobj(wbits=31), True
                yield inflater.decompress(raw)
    if in_member and not inflater.eof:
        raise EOFError("the file ends inside a gzip member")


def _scan_gzip(path: Path, layout: NiftiLayout, scan_floats: bool) -> None:
    """Decompress the whole stream: its length, and (float files) the NaN/Inf count."""
    dtype = np.dtype(_FLOAT_TYPES.get(layout.datatype, np.uint8)).newbyteorder(layout.byte_order)
    total, n_nan, n_inf = 0, 0, 0
    pending = b""
    try:
        for chunk in _decompressed_chunks(path):
            start = max(0, layout.voxel_offset_bytes - total)
            total += len(chunk)
            if scan_floats and start < len(chunk):
                data = pending + chunk[start:]
                usable = len(data) - len(data) % dtype.itemsize
                nan, inf = _count_non_finite(np.frombuffer(data[:usable], dtype=dtype))
                n_nan, n_inf, pending = n_nan + nan, n_inf + inf, data[usable:]
    except EOFError as exc:
        raise _truncated(path, total - layout.voxel_offset_bytes, layout) from exc
    except zlib.error as exc:
        raise InputError(f"'{path}' is corrupt: its gzip stream cannot be decompressed ({exc}); re-export the image.") from exc
    if total < layout.expected_bytes:
        raise _truncated(path, total - layout.voxel_offset_bytes, layout)
    if scan_floats:
        _raise_non_finite(path, n_nan, n_inf)


def _count_non_finite(values: np.ndarray) -> tuple[int, int]:
    finite = np.isfinite(values)
    if finite.all():
        return 0, 0
    n_nan = int(np.isnan(values).sum())
    return n_nan, int(values.size - np.count_nonzero(finite) - n_nan)


def _raise_non_finite(path: Path, n_nan: int, n_inf: int) -> None:
    if n_nan or n_inf:
        raise InputError(
            f"'{path}' contains non-finite voxels ({n_nan} NaN, {n_inf} Inf) in its stored data; fix or re-export the "
            f"image (NaN/Inf are not valid MR intensities; the NIfTI reader would silently turn them into 0)."
        )


def _truncated(path: Path, voxel_bytes_present: int, layout: NiftiLayout) -> InputError:
    present = max(0, min(voxel_bytes_present, layout.voxel_bytes))
    missing = 100.0 * (1.0 - present / layout.voxel_bytes) if layout.voxel_bytes else 0.0
    return InputError(
        f"'{path}' is truncated: its header describes {layout.voxel_bytes} bytes of voxels but the file holds "
        f"{present} ({missing:.0f}% of the image missing). Copy or export the file again."
    )
