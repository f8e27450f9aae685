"""From the model-grid probability map to numbered lesion instances on the pre-contrast grid.

Steps (all on the *cropped* pre grid, then un-cropped, so no full-resolution float copy is made
unless the probability map is asked for):

1. resample the probability linearly from the model grid onto the cropped pre grid (SimpleITK);
2. threshold;
3. restrict to the breast region (optional);
4. connected components (26-connectivity, ``sitk.ConnectedComponent``), removing components smaller
   than ``min_volume_mm3`` and numbering the rest 1..N by decreasing volume (``sitk.RelabelComponent``);
5. per-lesion confidence (:func:`score_components`, when the model card has a confidence model):
   components below the card's report threshold become candidates instead of lesions;
6. un-crop into the full pre grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import Geometry

if TYPE_CHECKING:  # pragma: no cover
    from ..breast.crop import CropBox
    from .lesion_confidence import LesionConfidenceModel, ScoredComponents


def resample_array(
    array: np.ndarray,
    source: Geometry,
    target: Geometry,
    interpolator: int = sitk.sitkLinear,
    default_value: float = 0.0,
) -> np.ndarray:
    """Resample a (z, y, x) array from the ``source`` grid onto the ``target`` grid (physical space).

    Args:
        array: voxels on ``source``, shape ``source.shape_zyx``.
        source: grid of ``array``.
        target: output grid (any spacing/direction/origin).
        interpolator: SimpleITK interpolator (``sitkLinear``, ``sitkNearestNeighbor``, ...).
        default_value: value outside ``source``.

    Returns:
        Array of shape ``target.shape_zyx`` with the dtype of ``array``.
    """
    if tuple(array.shape) != source.shape_zyx:
        raise InputError(f"array shape {array.shape} does not match its grid {source.shape_zyx}")
    if source.same_grid(target, atol_mm=1e-6, atol_dir=1e-9):
        return array
    image = source.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(array)))
    out = sitk.Resample(image, target.reference_image(), sitk.Transform(), interpolator, float(default_value),
                        image.GetPixelID())
    return sitk.GetArrayFromImage(out)


def min_voxels_for_volume(min_volume_mm3: float, voxel_volume_mm3: float) -> int:
    """Smallest voxel count whose volume is >= ``min_volume_mm3`` (0 keeps everything)."""
    if min_volume_mm3 <= 0:
        return 0
    return int(math.ceil(min_volume_mm3 / voxel_volume_mm3 - 1e-9))


def label_instances(binary: np.ndarray, geometry: Geometry, min_volume_mm3: float) -> tuple[np.ndarray, list[float]]:
    """Connected lesion instances numbered 1..N by decreasing volume, small ones removed.

    Args:
        binary: (z, y, x) mask (non-zero = lesion) on ``geometry``.
        geometry: its grid (for the voxel volume and the SimpleITK image).
        min_volume_mm3: components with a volume below this many mm3 are removed.

    Returns:
        ``(labels (z, y, x) uint16, volumes_mm3 [N])`` with ``volumes_mm3`` non-increasing.
    """
    image = geometry.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(binary, dtype=np.uint8)))
    components = sitk.ConnectedComponent(image, True)
    relabel = sitk.RelabelComponentImageFilter()
    relabel.SetMinimumObjectSize(min_voxels_for_volume(min_volume_mm3, geometry.voxel_volume_mm3))
    relabel.SetSortByObjectSize(True)
    relabelled = relabel.Execute(components)
    n = int(relabel.GetNumberOfObjects())
    if n > np.iinfo(np.uint16).max:
        raise InputError(f"{n} lesion components found; the probability threshold is far too low")
    # sizes from the filter (labels 1..N, after the removal): no second pass over the volume
    volumes = [float(c) * geometry.voxel_volume_mm3 for c in relabel.GetSizeOfObjectsInPixels()[:n]]
    labels = sitk.GetArrayFromImage(sitk.Cast(relabelled, sitk.sitkUInt16))
    return labels, volumes


@dataclass
class PostprocessResult:
    """Lesion instances and (optionally) the probability on the cropped pre grid.

    Attributes:
        lesion_labels_crop: (z, y, x) uint16 instances 1..N on the cropped pre grid.
        volumes_mm3: volume of each instance, non-increasing.
        probability_crop: (z, y, x) float32 probability on the cropped pre grid (always computed).
        removed_outside_breast_voxels: above-threshold voxels dropped by the breast restriction.
    """

    lesion_labels_crop: np.ndarray
    volumes_mm3: list[float]
    probability_crop: np.ndarray
    removed_outside_breast_voxels: int


def postprocess_probability(
    probability_model: np.ndarray,
    model_geometry: Geometry,
    crop_geometry: Geometry,
    breast_mask_crop: np.ndarray | None,
    threshold: float,
    min_volume_mm3: float,
) -> PostprocessResult:
    """Probability on the model grid -> lesion instances on the cropped pre grid.

    Args:
        probability_model: (z, y, x) float32 in [0, 1] on ``model_geometry``.
        model_geometry: the model grid (cropped region at the model's spacing).
        crop_geometry: the cropped pre-contrast grid.
        breast_mask_crop: (z, y, x) breast region (non-zero inside) on ``crop_geometry``, or ``None``
            for no restriction.
        threshold: probability threshold in (0, 1).
        min_volume_mm3: minimum lesion volume.
    """
    if not (0.0 < threshold < 1.0):
        raise InputError(f"threshold must be in (0, 1), got {threshold}")
    prob = resample_array(np.asarray(probability_model, dtype=np.float32), model_geometry, crop_geometry,
                          sitk.sitkLinear, 0.0)
    binary = prob >= threshold
    removed = 0
    if breast_mask_crop is not None:
        if tuple(breast_mask_crop.shape) != tuple(binary.shape):
            raise InputError(f"breast mask crop {breast_mask_crop.shape} does not match the crop {binary.shape}")
        inside = breast_mask_crop > 0
        removed = int(np.count_nonzero(binary & ~inside))
        binary &= inside
    labels, volumes = label_instances(binary, crop_geometry, min_volume_mm3)
    return PostprocessResult(labels, volumes, prob.astype(np.float32, copy=False), removed)


def score_components(
    post: PostprocessResult,
    crop: "CropBox",
    crop_geometry: Geometry,
    breast_mask_crop: np.ndarray | None,
    phases_full: list[np.ndarray],
    confidence_model: "LesionConfidenceModel | None",
) -> "ScoredComponents":
    """Per-lesion confidence of every component and the split into reported lesions and candidates.

    Args:
        post: the thresholded components on the cropped pre grid (:func:`postprocess_probability`).
        crop: the crop box (maps the crop onto the full pre grid, where the phases are read).
        crop_geometry: the cropped pre grid.
        breast_mask_crop: breast region on the crop (``None``: no breast-edge feature).
        phases_full: ``[pre, post1, ..., postK]`` arrays on the full pre grid (kinetic features).
        confidence_model: the model card's confidence model; ``None`` reports every component.

    Returns:
        :class:`~breastlesionseg.inference.lesion_confidence.ScoredComponents` on the cropped pre grid.
    """
    from .lesion_confidence import component_features, split_by_confidence

    if confidence_model is None:
        return split_by_confidence(post.lesion_labels_crop, post.volumes_mm3, {}, None)
    features = component_features(post.lesion_labels_crop, post.probability_crop, breast_mask_crop, crop_geometry,
                                  crop.start_zyx, phases_full)
    return split_by_confidence(post.lesion_labels_crop, post.volumes_mm3, features, confidence_model)
