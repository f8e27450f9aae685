"""MR acquisition artifacts of the phantom: point-spread blur, smooth bias field, Rician noise."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .grid import VoxelCoordinates


def psf_blur(image: np.ndarray, spacing_mm: tuple[float, float, float], fwhm_mm: float = 1.2,
             fwhm_z_mm: float | None = None) -> np.ndarray:
    """Gaussian point-spread blur with a physical FWHM (mm); array (z, y, x), spacing (x, y, z).

    ``fwhm_z_mm``: a different FWHM along the grid's z axis (slice thickness); ``None`` = ``fwhm_mm``.
    """
    sigma_mm = fwhm_mm / 2.3548
    sigma_z_mm = (fwhm_z_mm if fwhm_z_mm is not None else fwhm_mm) / 2.3548
    sigma = [sigma_z_mm / spacing_mm[2], sigma_mm / spacing_mm[1], sigma_mm / spacing_mm[0]]
    sigma = [s if s >= 0.2 else 0.0 for s in sigma]
    if not any(sigma):
        return image
    return ndimage.gaussian_filter(image, sigma=sigma, mode="nearest", truncate=3.0)


def bias_field(rng: np.random.Generator, coords: VoxelCoordinates, strength: float) -> np.ndarray:
    """Smooth multiplicative receive-coil bias field ``exp(strength * f)``, ``f`` in about [-1, 1].

    ``f`` is a random low-order polynomial (linear + quadratic terms) of the LPS position scaled by
    150 mm, plus a brighter lobe near each breast coil (anterior, |x| ~ 80 mm), normalised on a fixed
    physical lattice, so it is the same physical function on every grid. Returns float32 (z, y, x).
    """
    c = rng.normal(0.0, 1.0, size=9).astype(np.float32)
    lobe = rng.uniform(0.3, 0.7, size=2).astype(np.float32)

    def f(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        x, y, z = x / np.float32(150.0), y / np.float32(150.0), z / np.float32(150.0)
        out = (c[0] * x + c[1] * y + c[2] * z + np.float32(0.5) * (c[3] * x * x + c[4] * y * y + c[5] * z * z)
               + np.float32(0.5) * (c[6] * x * y + c[7] * y * z + c[8] * x * z))
        for sgn, amp in zip((1.0, -1.0), lobe):
            out = out + amp * np.exp(-((x - np.float32(sgn * 0.55)) ** 2 + (y + np.float32(0.4)) ** 2 + z * z)
                                     / np.float32(0.18))
        return out.astype(np.float32)

    gx, gy, gz = np.meshgrid(np.linspace(-165, 165, 23), np.linspace(-95, 95, 13), np.linspace(-64, 64, 9),
                             indexing="ij")
    ref = f(gx.astype(np.float32), gy.astype(np.float32), gz.astype(np.float32))
    med = np.float32(np.median(ref))
    scale = np.float32(max(float(np.percentile(np.abs(ref - med), 99)), 1e-6))
    field = f(coords.x, coords.y, coords.z)
    field -= med
    field *= np.float32(strength) / scale
    np.clip(field, -1.5 * strength, 1.5 * strength, out=field)
    return np.exp(field, out=field)


def rician_noise(rng: np.random.Generator, image: np.ndarray, sigma: float) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise: ``sqrt((S + n1)^2 + n2^2)`` (float32)."""
    if sigma <= 0:
        return image.astype(np.float32, copy=False)
    n1 = rng.standard_normal(image.shape, dtype=np.float32)
    n1 *= np.float32(sigma)
    n1 += image
    np.square(n1, out=n1)
    n2 = rng.standard_normal(image.shape, dtype=np.float32)
    n2 *= np.float32(sigma)
    np.square(n2, out=n2)
    n1 += n2
    return np.sqrt(n1, out=n1)


def rigid_shift(image: np.ndarray, shift_lps_mm: np.ndarray, geometry) -> np.ndarray:
    """Translate ``image`` (z, y, x) by ``shift_lps_mm`` (LPS mm, physical; linear interpolation, edges replicated).

    Patient motion between phases: the content moves by ``shift_lps_mm`` on the fixed grid.
    """
    if not np.any(shift_lps_mm):
        return image
    m = geometry.direction_matrix * np.asarray(geometry.spacing)[None, :]
    shift_ijk = np.linalg.solve(m, np.asarray(shift_lps_mm, dtype=float))
    return ndimage.shift(image, shift_ijk[::-1], order=1, mode="nearest").astype(np.float32, copy=False)
