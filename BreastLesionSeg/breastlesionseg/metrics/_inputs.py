"""Input checks shared by the metric functions: label maps, grids, instance labelling.

Every check raises :class:`~breastlesionseg.errors.InputError` / :class:`~breastlesionseg.errors.GeometryError`
with a message naming the offending input.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import GeometryError, InputError
from ..geometry import Geometry, Volume


def describe(volume: Volume | np.ndarray, role: str) -> str:
    """A short human-readable name of an input for error messages, e.g. ``prediction 'pred.nii.gz'``."""
    if isinstance(volume, Volume):
        label = volume.source or volume.name
        return f"{role} '{label}'" if label else role
    return role


def label_array(labels: Volume | np.ndarray, geometry: Geometry, role: str) -> np.ndarray:
    """Validate an integer label map against ``geometry`` and return it as an ``int32`` array.

    Args:
        labels: label map, shape ``geometry.shape_zyx`` (a numpy array is taken to be on ``geometry``;
            a :class:`Volume` must be on the same grid).
        geometry: the grid the labels must lie on.
        role: name of the argument for error messages (``"lesion_labels"``, ``"breast_mask"``).

    Returns:
        ``(z, y, x)`` integer array with values >= 0 (the input itself when it already is one; bool as uint8).

    Raises:
        GeometryError: the grid differs from ``geometry``.
        InputError: wrong shape, non-integer values or negative labels.
    """
    if isinstance(labels, Volume):
        if not labels.geometry.same_grid(geometry):
            raise GeometryError(
                f"{describe(labels, role)} is not on the exam grid: {labels.geometry.to_dict()} vs {geometry.to_dict()}"
            )
        array = np.asarray(labels.array)
    else:
        array = np.asarray(labels)
        if array.shape != geometry.shape_zyx:
            raise InputError(
                f"{role}: array shape {array.shape} does not match the exam grid (z, y, x) = {geometry.shape_zyx}"
            )
    if array.dtype == bool:
        return array.view(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise InputError(f"{role}: label values must be integers, got dtype {array.dtype} with non-integer values")
        if array.size and array.min() < 0:
            raise InputError(f"{role}: label values must be >= 0, found {array.min():g}")
        return array.astype(np.int32)
    if array.size and np.issubdtype(array.dtype, np.signedinteger) and array.min() < 0:
        raise InputError(f"{role}: label values must be >= 0, found {int(array.min())}")
    return array  # integer labels are used as they are (no copy of a large volume)


def check_same_grid(a: Volume, b: Volume, role_a: str, role_b: str) -> None:
    """Raise :class:`GeometryError` naming both inputs when ``a`` and ``b`` are not on one grid."""
    for vol, role in ((a, role_a), (b, role_b)):
        if not isinstance(vol, Volume):
            raise InputError(f"{role} must be a breastlesionseg.geometry.Volume, got {type(vol).__name__}")
    if not a.geometry.same_grid(b.geometry):
        raise GeometryError(
            f"{describe(a, role_a)} and {describe(b, role_b)} are not on the same grid "
            f"({a.geometry.to_dict()} vs {b.geometry.to_dict()}); resample one onto the other first"
        )


def instance_labels(labels: np.ndarray, fully_connected: bool = True) -> np.ndarray:
    """Lesion instances from a label map.

    A map with more than one distinct non-zero value is taken as instance labels as is (edited or exported
    lesion maps keep their numbering). A binary map (a single non-zero value) is split into connected
    components (26-connectivity when ``fully_connected``, else 6), numbered 1..N by decreasing size.

    Args:
        labels: ``(z, y, x)`` integer array, 0 = background.
        fully_connected: connectivity of the components of a binary map.

    Returns:
        ``(z, y, x)`` int32 instance map.
    """
    values = np.unique(labels)
    values = values[values != 0]
    if len(values) > 1:
        return labels.astype(np.int32, copy=False)
    binary = sitk.GetImageFromArray((labels != 0).astype(np.uint8))
    cc = sitk.ConnectedComponent(binary, fully_connected)
    cc = sitk.RelabelComponent(cc, sortByObjectSize=True)
    return sitk.GetArrayFromImage(cc).astype(np.int32)


def orthonormal(geometry: Geometry, atol: float = 1e-4) -> bool:
    """True when the direction matrix is orthonormal (a rotation or reflection, no shear)."""
    d = geometry.direction_matrix
    return bool(np.allclose(d.T @ d, np.eye(3), atol=atol))


def finite_or_none(value: float | None) -> float | None:
    """``float(value)`` when finite, else ``None`` (keeps dicts strict-JSON: no NaN / Infinity)."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None
