"""Resample a volume onto another grid in physical (LPS) space with SimpleITK."""
from __future__ import annotations

import logging

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import Geometry, Volume

log = logging.getLogger(__name__)

#: interpolator names accepted by :func:`resample_to_grid`
INTERPOLATORS: dict[str, int] = {
    "linear": sitk.sitkLinear,
    "nearest": sitk.sitkNearestNeighbor,
    "bspline": sitk.sitkBSpline3,
    "label_gaussian": sitk.sitkLabelGaussian,
}


def resample_to_grid(
    volume: Volume,
    geometry: Geometry,
    interpolator: str = "linear",
    default_value: float = 0.0,
    transform: sitk.Transform | None = None,
) -> Volume:
    """Resample ``volume`` onto ``geometry`` in physical space (points outside it get ``default_value``).

    Args:
        volume: the volume to resample, array ``(z, y, x)``.
        geometry: the target grid.
        interpolator: ``"linear"`` (images), ``"nearest"`` (label maps), ``"bspline"`` or ``"label_gaussian"``.
        default_value: value of target voxels whose centre maps outside ``volume``.
        transform: optional transform mapping target (fixed) points to ``volume`` (moving) points, as
            returned by :func:`~breastlesionseg.exam.registration.register_rigid`; identity when ``None``.

    Returns:
        A new volume on ``geometry`` with the input's dtype (integer and bool inputs are rounded/truncated
        back to it, so use ``nearest``/``label_gaussian`` for label maps), same name and source.

    Raises:
        InputError: unknown ``interpolator``.
    """
    if interpolator not in INTERPOLATORS:
        raise InputError(f"interpolator must be one of {sorted(INTERPOLATORS)}, got {interpolator!r}")
    if transform is None and volume.geometry.same_grid(geometry, atol_mm=1e-6, atol_dir=1e-9):
        return Volume(volume.array.copy(), geometry, name=volume.name, source=volume.source,
                      metadata=dict(volume.metadata))
    arr_in = volume.array
    if arr_in.dtype == np.bool_:  # SimpleITK has no bool pixels
        arr_in = arr_in.astype(np.uint8)
    elif arr_in.dtype == np.float16:
        arr_in = arr_in.astype(np.float32)
    image = volume.geometry.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(arr_in), isVector=False))
    reference = geometry.reference_image(image.GetPixelID())
    out = sitk.Resample(
        image,
        reference,
        transform if transform is not None else sitk.Transform(3, sitk.sitkIdentity),
        INTERPOLATORS[interpolator],
        float(default_value),
        image.GetPixelID(),
    )
    arr = sitk.GetArrayFromImage(out)
    if arr.dtype != volume.array.dtype:
        arr = arr.astype(volume.array.dtype)
    log.debug("resampled '%s' %s -> %s (%s)", volume.name or volume.source, volume.geometry.size, geometry.size,
              interpolator)
    return Volume(np.ascontiguousarray(arr), geometry, name=volume.name, source=volume.source,
                  metadata={**volume.metadata, "resampled_from": volume.geometry.to_dict()})
