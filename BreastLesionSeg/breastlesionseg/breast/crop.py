"""The optimized-volume (OV) crop: the breast-region bounding box plus a safe margin.

Narimani et al. crops every exam to the bounding box of the breast region plus a safe
distance (16 px, about 1.6 cm) and rounds the crop to what the network needs (a multiple of
``2**levels``). :func:`compute_crop` does that in physical units: the margin is given in mm and
converted per index axis with that axis' spacing, then every side is enlarged to a multiple of
``multiple`` voxels, centred on the margin box and shifted to stay inside the image.

When the image is smaller than the rounded size along an axis, the box runs past the image
border: :meth:`CropBox.crop` pads those voxels with ``fill`` (0 by default) so the crop always has
the rounded size, and :meth:`CropBox.uncrop` drops them again. :meth:`CropBox.geometry` is the
grid of the crop *including* the padded voxels (its origin may lie outside the image), so
physical positions stay exact in every case, oblique grids included.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import GeometryError, InputError
from ..geometry import Geometry, Volume


def _per_axis_zyx(value: int | Sequence[int] | None, name: str, default: int) -> tuple[int, int, int]:
    """An int or a (z, y, x) triple of positive ints -> (z, y, x) triple."""
    if value is None:
        return (default, default, default)
    if isinstance(value, (int, np.integer)):
        values = (int(value),) * 3
    else:
        values = tuple(int(v) for v in value)
        if len(values) != 3:
            raise InputError(f"{name} must be an int or a (z, y, x) triple, got {value!r}")
    if any(v < 1 for v in values):
        raise InputError(f"{name} must be >= 1 voxel along every axis, got {value!r}")
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class CropBox:
    """A box of voxels ``[start, stop)`` of a full grid, per axis in (z, y, x) order.

    ``start`` may be negative and ``stop`` may exceed ``full_shape`` (padding) only when the image
    is smaller than the rounded box along that axis.

    Attributes:
        start_zyx: first voxel index of the box along (z, y, x) (may be < 0 when padded).
        stop_zyx: one past the last voxel index along (z, y, x) (may be > full size when padded).
        full_shape_zyx: shape (z, y, x) of the full grid the box refers to.
    """

    start_zyx: tuple[int, int, int]
    stop_zyx: tuple[int, int, int]
    full_shape_zyx: tuple[int, int, int]

    def __post_init__(self) -> None:
        for name in ("start_zyx", "stop_zyx", "full_shape_zyx"):
            value = tuple(int(v) for v in getattr(self, name))
            if len(value) != 3:
                raise InputError(f"CropBox.{name} must have 3 values (z, y, x), got {getattr(self, name)!r}")
            object.__setattr__(self, name, value)
        for a in range(3):
            if self.stop_zyx[a] <= self.start_zyx[a]:
                raise InputError(f"CropBox is empty along axis {a}: start {self.start_zyx}, stop {self.stop_zyx}")
            if self.full_shape_zyx[a] < 1:
                raise InputError(f"CropBox.full_shape_zyx must be positive, got {self.full_shape_zyx}")
            if self.stop_zyx[a] <= 0 or self.start_zyx[a] >= self.full_shape_zyx[a]:
                raise InputError(
                    f"CropBox {self.start_zyx}..{self.stop_zyx} does not overlap the grid {self.full_shape_zyx}"
                )

    # -- derived quantities ----------------------------------------------------------------------
    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """Shape (z, y, x) of the cropped array (padding included)."""
        return tuple(b - a for a, b in zip(self.start_zyx, self.stop_zyx))  # type: ignore[return-value]

    @property
    def padded(self) -> bool:
        """True when the box runs past the image border along some axis (then crop() pads)."""
        return any(a < 0 or b > n for a, b, n in zip(self.start_zyx, self.stop_zyx, self.full_shape_zyx))

    @property
    def inside_slices(self) -> tuple[slice, slice, slice]:
        """Slices of the full array covered by the box (clipped to the image)."""
        return tuple(
            slice(max(a, 0), min(b, n)) for a, b, n in zip(self.start_zyx, self.stop_zyx, self.full_shape_zyx)
        )  # type: ignore[return-value]

    @property
    def _crop_slices(self) -> tuple[slice, slice, slice]:
        """Slices of the cropped array that hold image voxels (the rest is padding)."""
        return tuple(
            slice(max(a, 0) - a, min(b, n) - a) for a, b, n in zip(self.start_zyx, self.stop_zyx, self.full_shape_zyx)
        )  # type: ignore[return-value]

    @property
    def fraction_kept(self) -> float:
        """Fraction (0..1) of the full image's voxels that lie inside the box."""
        inside = int(np.prod([s.stop - s.start for s in self.inside_slices]))
        return inside / float(np.prod(self.full_shape_zyx))

    # -- array mapping ---------------------------------------------------------------------------
    def _check_full(self, array: np.ndarray, what: str) -> None:
        if array.ndim not in (3, 4) or tuple(array.shape[-3:]) != self.full_shape_zyx:
            raise GeometryError(
                f"{what}: expected an array of shape (z, y, x) = {self.full_shape_zyx} or (C, z, y, x), "
                f"got {array.shape}"
            )

    def crop(self, array: np.ndarray, fill: float = 0) -> np.ndarray:
        """Cut the box out of a full-grid array.

        Args:
            array: ``(z, y, x)`` or ``(C, z, y, x)`` on the full grid.
            fill: value of padded voxels (only when the box runs past the image).

        Returns:
            A new array of shape ``shape_zyx`` (or ``(C, *shape_zyx)``), same dtype.
        """
        array = np.asarray(array)
        self._check_full(array, "CropBox.crop array")
        lead = array.shape[:-3]
        if not self.padded:
            return array[(Ellipsis, *self.inside_slices)].copy()
        out = np.full(lead + self.shape_zyx, fill, dtype=array.dtype)
        out[(Ellipsis, *self._crop_slices)] = array[(Ellipsis, *self.inside_slices)]
        return out

    def uncrop(
        self, array: np.ndarray, full_shape: Sequence[int] | None = None, fill: float = 0
    ) -> np.ndarray:
        """Put a cropped array back on the full grid (exact inverse of :meth:`crop` inside the box).

        Args:
            array: ``(z, y, x)`` of shape ``shape_zyx`` or ``(C, z, y, x)``.
            full_shape: the full (z, y, x) shape (or ``(C, z, y, x)``); defaults to ``full_shape_zyx``
                and must agree with it.
            fill: value of voxels outside the box.

        Returns:
            Array of shape ``full_shape_zyx`` (or ``(C, *full_shape_zyx)``), same dtype as ``array``.
        """
        array = np.asarray(array)
        if array.ndim not in (3, 4) or tuple(array.shape[-3:]) != self.shape_zyx:
            raise GeometryError(
                f"CropBox.uncrop array: expected shape (z, y, x) = {self.shape_zyx} or (C, z, y, x), got {array.shape}"
            )
        if full_shape is not None and tuple(int(v) for v in full_shape)[-3:] != self.full_shape_zyx:
            raise GeometryError(
                f"CropBox.uncrop full_shape {tuple(full_shape)} does not match the box's grid {self.full_shape_zyx}"
            )
        lead = array.shape[:-3]
        out = np.full(lead + self.full_shape_zyx, fill, dtype=array.dtype)
        out[(Ellipsis, *self.inside_slices)] = array[(Ellipsis, *self._crop_slices)]
        return out

    # -- physical space --------------------------------------------------------------------------
    def geometry(self, full_geometry: Geometry) -> Geometry:
        """The grid of the cropped array: same spacing and direction, origin at the box's first voxel.

        Works for any direction (oblique included): the new origin is the LPS position of the full
        grid's continuous index ``(start_x, start_y, start_z)``.
        """
        if full_geometry.shape_zyx != self.full_shape_zyx:
            raise GeometryError(
                f"CropBox.geometry: full geometry shape {full_geometry.shape_zyx} does not match the box's "
                f"grid {self.full_shape_zyx}"
            )
        start_ijk = np.array(self.start_zyx[::-1], dtype=float)
        origin = full_geometry.index_to_lps(start_ijk)
        return Geometry(
            tuple(self.shape_zyx[::-1]), full_geometry.spacing, tuple(float(v) for v in origin), full_geometry.direction
        )

    def crop_volume(self, volume: Volume, fill: float = 0) -> Volume:
        """Crop a :class:`Volume` on the full grid; the result carries the crop geometry."""
        return Volume(self.crop(volume.array, fill=fill), self.geometry(volume.geometry), name=volume.name,
                      source=volume.source)

    def to_dict(self) -> dict:
        """JSON-ready description."""
        return {
            "start_zyx": list(self.start_zyx),
            "stop_zyx": list(self.stop_zyx),
            "shape_zyx": list(self.shape_zyx),
            "full_shape_zyx": list(self.full_shape_zyx),
            "padded": self.padded,
            "fraction_kept": self.fraction_kept,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "CropBox":
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["start_zyx"]), tuple(data["stop_zyx"]), tuple(data["full_shape_zyx"]))


def _round_axis(lo: int, hi: int, n: int, multiple: int, min_size: int) -> tuple[int, int]:
    """Enlarge ``[lo, hi)`` to a multiple of ``multiple`` (>= min_size), centred, shifted inside ``[0, n)``."""
    size = max(hi - lo, min_size, 1)
    size = int(math.ceil(size / multiple) * multiple)
    extra = size - (hi - lo)
    start = lo - extra // 2
    stop = start + size
    if size <= n:  # fits: shift inside the image
        if start < 0:
            start, stop = 0, size
        elif stop > n:
            start, stop = n - size, n
    else:  # larger than the image: cover the image, pad evenly on both sides
        start = -((size - n) // 2)
        stop = start + size
    return start, stop


def compute_crop(
    mask: Volume,
    margin_mm: float = 16.0,
    multiple: int | Sequence[int] = 16,
    min_size: int | Sequence[int] | None = None,
) -> CropBox:
    """The optimized-volume crop of a breast-region mask.

    Bounding box of the non-zero voxels, grown by ``margin_mm`` on every side (converted per index
    axis: ``ceil(margin_mm / spacing)`` voxels), clipped to the image, then enlarged symmetrically so
    every side is a multiple of ``multiple`` voxels and at least ``min_size`` voxels; the enlarged box
    is shifted back inside the image when it fits, and padded (see module doc) when it does not.

    Args:
        mask: breast-region mask (any non-zero voxel counts) with its geometry.
        margin_mm: safe distance in mm added on every side (Narimani et al.: ~16 mm).
        multiple: each side of the box is a multiple of this many voxels (``2**levels`` of the
            network); an int or a (z, y, x) triple.
        min_size: smallest box side in voxels (int or (z, y, x)), e.g. the network's patch size.

    Returns:
        The :class:`CropBox` on ``mask``'s grid.

    Raises:
        InputError: the mask is empty, or an argument is invalid.
    """
    if not isinstance(mask, Volume):
        raise InputError(f"compute_crop: mask must be a breastlesionseg Volume, got {type(mask).__name__}")
    if not np.isfinite(margin_mm) or margin_mm < 0:
        raise InputError(f"compute_crop: margin_mm must be a finite value >= 0, got {margin_mm!r}")
    mult = _per_axis_zyx(multiple, "multiple", 1)
    mins = _per_axis_zyx(min_size, "min_size", 1)
    arr = np.asarray(mask.array)
    # occupied index range per axis from projections (np.nonzero of the whole mask took 0.5 s on Duke)
    occupied = [np.flatnonzero(np.any(arr, axis=tuple(b for b in range(3) if b != a))) for a in range(3)]
    if occupied[0].size == 0:
        raise InputError(f"compute_crop: the breast mask '{mask.name or mask.source}' is empty; nothing to crop to")
    shape = mask.geometry.shape_zyx
    spacing_zyx = mask.geometry.spacing[::-1]
    start, stop = [], []
    for a in range(3):
        m = int(math.ceil(margin_mm / spacing_zyx[a] - 1e-9))
        lo = max(int(occupied[a][0]) - m, 0)
        hi = min(int(occupied[a][-1]) + 1 + m, shape[a])
        s, e = _round_axis(lo, hi, shape[a], mult[a], mins[a])
        start.append(s)
        stop.append(e)
    return CropBox(tuple(start), tuple(stop), shape)  # type: ignore[arg-type]
