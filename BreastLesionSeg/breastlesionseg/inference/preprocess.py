"""Model input from an exam: optimized-volume crop -> model spacing -> channels + normalisation.

Work happens on the breast crop only: each needed phase is cut out of the pre grid (the only
full-resolution copy is the crop itself), converted to float32 and resampled linearly onto the
*model grid* — the crop's physical extent at the model card's spacing, same direction (oblique
included), centred on the crop. Channels (``pre``, ``postK``, ``subK``) and their normalisation come
from the model card through :func:`breastlesionseg.nn.channels.build_channels`.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..breast.crop import CropBox, compute_crop
from ..errors import InputError
from ..exam import DCEExam
from ..exam.resample import resample_to_grid
from ..geometry import Geometry, Volume

log = logging.getLogger(__name__)

_CHANNEL_RE = re.compile(r"^(pre|post([1-9][0-9]*)|sub([1-9][0-9]*))$")


def phases_needed(channel_names: Sequence[str]) -> int:
    """Number of leading phases (pre, post1, ...) the channels need (at least 2: pre + post1).

    Raises:
        InputError: an unknown channel name.
    """
    highest = 1
    for name in channel_names:
        match = _CHANNEL_RE.match(str(name))
        if not match:
            raise InputError(f"unknown model input channel {name!r}; expected pre, postK or subK")
        k = match.group(2) or match.group(3)
        if k is not None:
            highest = max(highest, int(k))
    return highest + 1


def model_grid(crop_geometry: Geometry, spacing_mm_xyz: Sequence[float]) -> Geometry:
    """The crop's physical extent sampled at ``spacing_mm_xyz`` (same direction, same centre).

    Args:
        crop_geometry: grid of the cropped pre-contrast image.
        spacing_mm_xyz: the model's voxel spacing (x, y, z) in mm.

    Returns:
        Grid with ``size = max(1, round(size * spacing / new_spacing))`` per axis whose centre
        coincides with the crop's centre.
    """
    new_spacing = np.asarray([float(s) for s in spacing_mm_xyz])
    if new_spacing.shape != (3,) or np.any(new_spacing <= 0):
        raise InputError(f"model spacing must be 3 positive mm values (x, y, z), got {spacing_mm_xyz}")
    size = np.asarray(crop_geometry.size, dtype=float)
    spacing = np.asarray(crop_geometry.spacing)
    new_size = np.maximum(1, np.round(size * spacing / new_spacing)).astype(int)
    centre = crop_geometry.index_to_lps((size - 1.0) / 2.0)
    d = crop_geometry.direction_matrix
    origin = centre - d @ ((new_size - 1.0) / 2.0 * new_spacing)
    return Geometry(tuple(int(s) for s in new_size), tuple(new_spacing), tuple(float(v) for v in origin),
                    crop_geometry.direction)


@dataclass
class CroppedExam:
    """The needed phases cut to the optimized-volume crop.

    Attributes:
        crop: the crop box on the pre grid.
        geometry: grid of the crop (pre spacing).
        phases: cropped float32 phases ``[pre, post1, ...]`` (only as many as the channels need).
        breast: (z, y, x) uint8 breast mask (0/1/2) on the crop.
    """

    crop: CropBox
    geometry: Geometry
    phases: list[Volume]
    breast: np.ndarray


@dataclass
class PreparedInput:
    """The network input on the model grid plus everything needed to map results back.

    Attributes:
        crop: the crop box on the pre grid.
        crop_geometry: grid of the crop at the pre spacing.
        model_geometry: grid of the crop at the model's spacing (where the network runs).
        channels: (C, z, y, x) float32 network input on ``model_geometry``.
        breast_model: (z, y, x) uint8 breast mask (0/1/2) on ``model_geometry``.
        breast_crop: (z, y, x) uint8 breast mask (0/1/2) on ``crop_geometry``.
        patch_size_zyx: sliding-window size (z, y, x) of the model.
    """

    crop: CropBox
    crop_geometry: Geometry
    model_geometry: Geometry
    channels: np.ndarray
    breast_model: np.ndarray
    breast_crop: np.ndarray
    patch_size_zyx: tuple[int, int, int]


def crop_exam(
    exam: DCEExam,
    breast_mask: Volume,
    n_phases: int,
    margin_mm: float = 16.0,
    use_breast_crop: bool = True,
) -> CroppedExam:
    """Cut the optimized-volume crop (breast bounding box + ``margin_mm``) out of the first ``n_phases``.

    Args:
        exam: the exam on the pre grid.
        breast_mask: 0/1/2 breast region on the pre grid.
        n_phases: leading phases to keep (see :func:`phases_needed`).
        margin_mm: safety margin around the breast region.
        use_breast_crop: ``False`` uses the whole image (no crop).

    Raises:
        InputError: too few phases, a mask on another grid, or an empty breast mask with cropping on.
    """
    if n_phases > len(exam.phases):
        raise InputError(
            f"the model needs {n_phases} phases (pre + {n_phases - 1} post-contrast) but the exam has "
            f"{len(exam.phases)}: {exam.names}"
        )
    if not breast_mask.geometry.same_grid(exam.geometry):
        raise InputError("the breast mask is not on the exam's pre-contrast grid")
    shape = exam.geometry.shape_zyx
    if use_breast_crop and np.any(breast_mask.array):
        crop = compute_crop(breast_mask, margin_mm=margin_mm, multiple=1)
    else:
        if use_breast_crop:
            raise InputError(
                f"no breast region was found in '{exam.pre.name or exam.pre.source}', so there is nothing to segment "
                "(check the phases, or run with --no-breast-mask to segment the whole image)"
            )
        crop = CropBox((0, 0, 0), shape, shape)
    geometry = crop.geometry(exam.geometry)
    phases = [
        Volume(crop.crop(np.asarray(p.array)).astype(np.float32, copy=False), geometry, name=p.name, source=p.source)
        for p in exam.phases[:n_phases]
    ]
    breast = crop.crop(np.asarray(breast_mask.array)).astype(np.uint8, copy=False)
    log.debug("crop %s of %s (%.0f%% of the voxels)", crop.shape_zyx, shape, 100 * crop.fraction_kept)
    return CroppedExam(crop, geometry, phases, breast)


def resample_to_model(cropped: CroppedExam, spacing_mm_xyz: Sequence[float]) -> tuple[DCEExam, np.ndarray, Geometry]:
    """Resample the cropped phases (linear) and breast mask (nearest) to the model's spacing.

    Returns:
        ``(exam on the model grid, breast mask (z, y, x) uint8 on it, model grid)``.
    """
    target = model_grid(cropped.geometry, spacing_mm_xyz)
    phases = [resample_to_grid(p, target, "linear", 0.0) for p in cropped.phases]
    breast = resample_to_grid(Volume(cropped.breast, cropped.geometry, name="breast"), target, "nearest", 0).array
    return DCEExam(phases), np.asarray(breast, dtype=np.uint8), target


def build_model_input(
    model_exam: DCEExam,
    breast_model: np.ndarray,
    channel_names: Sequence[str],
    normalization: str,
    normalization_region: str = "breast_mask",
) -> np.ndarray:
    """Channels + normalisation of the model card, on the model grid -> (C, z, y, x) float32."""
    from ..nn.channels import build_channels

    mask = None
    if normalization_region == "breast_mask" and np.any(breast_model):
        mask = Volume((breast_model > 0).astype(np.uint8), model_exam.geometry, name="breast")
    channels = build_channels(model_exam, list(channel_names), normalization, mask)
    channels = np.asarray(channels, dtype=np.float32)
    if channels.shape != (len(channel_names), *model_exam.geometry.shape_zyx):
        raise InputError(f"model input has shape {channels.shape}; expected {(len(channel_names), *model_exam.geometry.shape_zyx)}")
    if not np.all(np.isfinite(channels)):
        raise InputError("the model input contains NaN or infinite values (check the phase images)")
    return channels
