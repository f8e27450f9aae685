"""Smooth random fields defined in physical space (so every grid samples the same pattern).

A field is white Gaussian noise on a fixed axis-aligned LPS lattice, Gaussian-smoothed at a
physical scale (mm), normalised to zero mean / unit standard deviation, and sampled at any LPS
points by trilinear interpolation (``scipy.ndimage.map_coordinates``).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


class PhysicalNoiseField:
    """A seeded, smooth, unit-variance random field on a fixed LPS box.

    Args:
        rng: random generator (consumed once, at construction).
        box_min_mm, box_max_mm: LPS corners of the lattice box (x, y, z); points outside are clamped.
        lattice_mm: lattice spacing in mm.
        scales_mm: Gaussian smoothing sigmas in mm of the components that are summed.
        weights: weight of each component (same length as ``scales_mm``).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        box_min_mm: tuple[float, float, float],
        box_max_mm: tuple[float, float, float],
        lattice_mm: float,
        scales_mm: tuple[float, ...],
        weights: tuple[float, ...] | None = None,
    ) -> None:
        self.box_min = np.asarray(box_min_mm, dtype=np.float64)
        self.lattice_mm = float(lattice_mm)
        n = np.ceil((np.asarray(box_max_mm) - self.box_min) / self.lattice_mm).astype(int) + 1
        weights = weights or tuple(1.0 for _ in scales_mm)
        field = np.zeros(tuple(n), dtype=np.float32)  # (x, y, z) order
        for sigma_mm, w in zip(scales_mm, weights):
            white = rng.standard_normal(tuple(n), dtype=np.float32)
            comp = ndimage.gaussian_filter(white, sigma=sigma_mm / self.lattice_mm, mode="reflect")
            comp -= comp.mean()
            comp /= max(float(comp.std()), 1e-6)
            field += np.float32(w) * comp
        field -= field.mean()
        field /= max(float(field.std()), 1e-6)
        self.lattice = field

    def sample(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Field values at LPS points (arrays of equal shape, mm) -> float32 array of that shape."""
        coords = np.stack(
            [
                (np.asarray(x, dtype=np.float32).ravel() - np.float32(self.box_min[0])) / np.float32(self.lattice_mm),
                (np.asarray(y, dtype=np.float32).ravel() - np.float32(self.box_min[1])) / np.float32(self.lattice_mm),
                (np.asarray(z, dtype=np.float32).ravel() - np.float32(self.box_min[2])) / np.float32(self.lattice_mm),
            ]
        )
        vals = ndimage.map_coordinates(self.lattice, coords, order=1, mode="nearest", prefilter=False)
        return vals.reshape(np.shape(x)).astype(np.float32, copy=False)


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors on the sphere, shape (n, 3) (deterministic)."""
    i = np.arange(n, dtype=np.float64) + 0.5
    phi = np.arccos(1.0 - 2.0 * i / n)
    theta = np.pi * (1.0 + 5.0**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3x3 rotation matrix (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))[None, :]
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q
