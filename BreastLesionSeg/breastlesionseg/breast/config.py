"""Typed configuration of the breast-region segmentation."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from ..errors import InputError

Method = Literal["classical", "model"]
Intensity = Literal["mean", "max", "pre"]


@dataclass(frozen=True)
class BreastRegionConfig:
    """How to segment the breast region.

    Attributes:
        method: ``"classical"`` (no training data; always available, the default) or ``"model"``
            (a learned breast-region network from :mod:`breastlesionseg.nn`).
        model: model id (folder under ``models/``) or path of a model folder; required for ``"model"``.
        device: torch device of the learned path (``"cpu"``, ``"cuda"``, ``"auto"``).
        working_spacing_mm: the classical method works on a grid of about this spacing (mm) and maps
            the mask back to the pre-contrast grid (never finer than the native spacing).
        body_intensity: image used for the body/air boundary: ``"mean"`` or ``"max"`` of all phases,
            or ``"pre"`` only.
        skin_mm: skin thickness skipped before the chest-wall search starts (mm).
        chest_wall_min_thickness_mm: a chest wall is a run of dark (muscle/lung) tissue at least this
            thick along the anterior-posterior axis (mm).
        chest_wall_smoothing_mm: size (mm) of the robust median filter applied to the chest-wall
            surface across slices and columns.
        chest_wall_spike_mm: posterior excursions of the chest-wall surface narrower than this (mm,
            along x) are removed (grey opening), e.g. where a thin muscle over the heart is missed.
        tissue_level_sigma_mm: scale (mm) of the local bright-tissue level used to call a voxel dark
            (bias-field tolerance).
        dark_fraction: a voxel is dark (muscle, lung) below this fraction of the local tissue level.
        posterior_limit_mm: lateral boundary ("anterior axillary line"): in every axial slice, tissue
            more than this far posterior of the chest-wall surface at the sternal midline is outside
            the breast region (lateral chest wall, axilla, arms) (mm).
        min_breast_thickness_mm: columns whose breast tissue is thinner than this are dropped (mm).
        fill_holes: fill enclosed holes of the final mask per axial slice.
    """

    method: Method = "classical"
    model: str | None = None
    device: str = "cpu"
    working_spacing_mm: float = 2.0
    body_intensity: Intensity = "mean"
    skin_mm: float = 3.0
    chest_wall_min_thickness_mm: float = 4.5
    chest_wall_smoothing_mm: float = 20.0
    chest_wall_spike_mm: float = 25.0
    tissue_level_sigma_mm: float = 15.0
    dark_fraction: float = 0.65
    posterior_limit_mm: float = 45.0
    min_breast_thickness_mm: float = 2.0
    fill_holes: bool = True

    def __post_init__(self) -> None:
        if self.method not in ("classical", "model"):
            raise InputError(f"BreastRegionConfig.method must be 'classical' or 'model', got {self.method!r}")
        if self.method == "model" and not self.model:
            raise InputError("BreastRegionConfig.method='model' needs model=<model id or folder>")
        if self.body_intensity not in ("mean", "max", "pre"):
            raise InputError(
                f"BreastRegionConfig.body_intensity must be 'mean', 'max' or 'pre', got {self.body_intensity!r}"
            )
        for name in ("working_spacing_mm", "chest_wall_min_thickness_mm", "chest_wall_smoothing_mm",
                     "posterior_limit_mm", "tissue_level_sigma_mm", "chest_wall_spike_mm", "dark_fraction"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"BreastRegionConfig.{name} must be > 0 mm, got {value!r}")
        for name in ("skin_mm", "min_breast_thickness_mm"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise InputError(f"BreastRegionConfig.{name} must be >= 0 mm, got {value!r}")

    def to_dict(self) -> dict:
        """JSON-ready copy."""
        return asdict(self)
