"""Image grid geometry in LPS (ITK/SimpleITK convention) and the Volume container.

Array convention: numpy arrays are indexed ``(k, j, i)`` = ``(z, y, x)`` = (slice, row, column),
exactly as ``SimpleITK.GetArrayFromImage`` returns them. Sizes, spacings and origins are in ITK
order ``(x, y, z)``. Spacing and coordinates are in millimetres.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

#: LPS <-> RAS: flip the sign of x and y (an involution, so the same matrix converts both ways).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Geometry:
    """The physical grid of a 3D image.

    Attributes:
        size: voxels along (x, y, z).
        spacing: voxel size in mm along (x, y, z).
        origin: LPS position in mm of voxel (0, 0, 0)'s centre.
        direction: 3x3 direction cosines, row-major, LPS (column c is the axis of index c).
    """

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        if len(self.size) != 3 or any(int(s) < 1 for s in self.size):
            raise ValueError(f"Geometry.size must be 3 positive ints, got {self.size}")
        if len(self.spacing) != 3 or any(not np.isfinite(s) or s <= 0 for s in self.spacing):
            raise ValueError(f"Geometry.spacing must be 3 positive mm values, got {self.spacing}")
        if len(self.direction) != 9:
            raise ValueError(f"Geometry.direction must have 9 values, got {len(self.direction)}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(s) for s in self.origin))
        object.__setattr__(self, "direction", tuple(float(s) for s in self.direction))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_sitk(cls, image: sitk.Image) -> "Geometry":
        """Geometry of a 3D SimpleITK image."""
        if image.GetDimension() != 3:
            raise ValueError(f"expected a 3D image, got {image.GetDimension()}D")
        return cls(image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection())

    def apply_to(self, image: sitk.Image) -> sitk.Image:
        """Set spacing, origin and direction of ``image`` (same size) to this geometry; returns it."""
        if tuple(image.GetSize()) != self.size:
            raise ValueError(f"image size {image.GetSize()} does not match geometry size {self.size}")
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    def reference_image(self, pixel_type: int = sitk.sitkUInt8) -> sitk.Image:
        """An empty SimpleITK image on this grid (for resampling)."""
        return self.apply_to(sitk.Image(list(self.size), pixel_type))

    # -- derived quantities ------------------------------------------------------------------
    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """numpy array shape (z, y, x) of an image on this grid."""
        return (self.size[2], self.size[1], self.size[0])

    @property
    def direction_matrix(self) -> np.ndarray:
        """3x3 LPS direction matrix (columns = index axes)."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm3."""
        return float(np.prod(self.spacing))

    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """Continuous voxel indices ``(..., 3)`` in (i, j, k) = (x, y, z) order -> LPS mm ``(..., 3)``."""
        ijk = np.asarray(ijk, dtype=float)
        m = self.direction_matrix * np.asarray(self.spacing)[None, :]
        return ijk @ m.T + np.asarray(self.origin)

    def lps_to_index(self, lps: np.ndarray) -> np.ndarray:
        """LPS mm ``(..., 3)`` -> continuous voxel indices ``(..., 3)`` in (i, j, k) order."""
        m = self.direction_matrix * np.asarray(self.spacing)[None, :]
        return (np.asarray(lps, dtype=float) - np.asarray(self.origin)) @ np.linalg.inv(m).T

    def ijk_to_lps_matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping (i, j, k, 1) to LPS mm."""
        out = np.eye(4)
        out[:3, :3] = self.direction_matrix * np.asarray(self.spacing)[None, :]
        out[:3, 3] = self.origin
        return out

    def ijk_to_ras_matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping (i, j, k, 1) to RAS mm (what MRML volume nodes store)."""
        out = self.ijk_to_lps_matrix()
        out[:3, :] = LPS_TO_RAS @ out[:3, :]
        return out

    def orientation_code(self) -> str:
        """Three-letter ITK/DICOM orientation code in LPS terms, e.g. ``"LPS"`` or ``"RAI"``."""
        return sitk.DICOMOrientImageFilter_GetOrientationFromDirectionCosines(self.direction)

    def corners_lps(self) -> np.ndarray:
        """The 8 corner voxel centres in LPS mm, shape (8, 3)."""
        s = np.asarray(self.size) - 1
        idx = np.array([[i, j, k] for i in (0, s[0]) for j in (0, s[1]) for k in (0, s[2])], dtype=float)
        return self.index_to_lps(idx)

    def same_grid(self, other: "Geometry", atol_mm: float = 1e-3, atol_dir: float = 1e-5) -> bool:
        """True when both grids have the same size and match in spacing, origin and direction."""
        return (
            self.size == other.size
            and np.allclose(self.spacing, other.spacing, atol=atol_mm)
            and np.allclose(self.origin, other.origin, atol=atol_mm)
            and np.allclose(self.direction, other.direction, atol=atol_dir)
        )

    def to_dict(self) -> dict:
        """JSON-friendly description (LPS, mm)."""
        return {
            "size_xyz": list(self.size),
            "spacing_mm_xyz": list(self.spacing),
            "origin_lps_mm": list(self.origin),
            "direction_lps": list(self.direction),
            "orientation": self.orientation_code(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Geometry":
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["size_xyz"]), tuple(data["spacing_mm_xyz"]), tuple(data["origin_lps_mm"]),
                   tuple(data["direction_lps"]))


@dataclass
class Volume:
    """A 3D image: a ``(z, y, x)`` numpy array plus its LPS geometry.

    Attributes:
        array: voxel values, shape ``geometry.shape_zyx``.
        geometry: the grid.
        name: a human-readable name (phase name, file stem).
        source: where it came from (path or description), used in error messages.
    """

    array: np.ndarray
    geometry: Geometry
    name: str = ""
    source: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"Volume '{self.name or self.source}': array must be 3D, got shape {self.array.shape}")
        if tuple(self.array.shape) != self.geometry.shape_zyx:
            raise ValueError(
                f"Volume '{self.name or self.source}': array shape {self.array.shape} does not match geometry "
                f"(z, y, x) = {self.geometry.shape_zyx}"
            )

    @classmethod
    def from_sitk(cls, image: sitk.Image, name: str = "", source: str = "") -> "Volume":
        """Wrap a 3D SimpleITK image (the array is a copy)."""
        return cls(sitk.GetArrayFromImage(image), Geometry.from_sitk(image), name=name, source=source)

    def to_sitk(self) -> sitk.Image:
        """A SimpleITK image with this volume's voxels and geometry."""
        return self.geometry.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(self.array), isVector=False))

    def with_array(self, array: np.ndarray, name: str | None = None) -> "Volume":
        """A new volume on the same grid with other voxel values (name, source and a copy of the metadata kept)."""
        return Volume(array, self.geometry, name=self.name if name is None else name, source=self.source,
                      metadata=dict(self.metadata))
