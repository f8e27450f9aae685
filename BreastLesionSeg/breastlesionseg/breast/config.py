"""Typed configuration of the breast-region segmentation."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from ..errors import InputError

Method = Literal["classical", "model"]
Intensity = Literal["mean", "max", "pre"]


@dataclass(frozen=True)
class BreastRegionConfig:
    """How to segment the breast region (definition and algorithm: docs/breast_region.md).

    Attributes:
        method: ``"classical"`` (no training data; always available, the default) or ``"model"``
            (a learned breast-region network from :mod:`breastlesionseg.nn`, see ``learned.py``).
        model: model id (folder under ``models/``) or path of a model folder; required for ``"model"``.
        device: torch device of the learned path (``"cpu"``, ``"cuda"``, ``"auto"``).
        working_spacing_mm: the classical method works on a grid of about this spacing (mm) and maps
            the mask back to the pre-contrast grid (never finer than the native spacing).
        body_intensity: image used for the body/air boundary: ``"mean"`` or ``"max"`` of all phases,
            or ``"pre"`` only.
        skin_mm: skin thickness (mm); the subcutaneous fat level is sampled just below it and no
            chest wall is accepted inside it.
        chest_wall_max_depth_mm: the anterior surface of the pectoralis lies at most this far anterior
            of the lungs / heart (chest wall + muscle thickness, mm).
        chest_wall_smoothing_mm: median filter length (mm) of the chest-wall surface along z.
        rib_width_mm: posterior excursions of the chest-wall surface narrower than this along z (mm)
            are removed (ribs with fatty marrow stop the search early).
        posterior_limit_mm: lateral boundary ("anterior axillary line"): in every axial slice, tissue
            more than this far posterior of the chest-wall surface at the sternal midline is outside
            the breast region (lateral chest wall, axilla, arms) (mm).
        inferior_descent_mm_per_mm: below the breasts' centre slice (area-weighted median along z),
            the chest-wall surface may move at most this far posteriorly (mm) per mm towards inferior,
            relative to the slice above (no lung / heart anchor there; the liver misleads the search).
        min_breast_thickness_mm: columns whose breast tissue is thinner than this are dropped (mm).
        fill_holes: fill enclosed holes of the final mask per axial slice.
    """

    method: Method = "classical"
    model: str | None = None
    device: str = "cpu"
    working_spacing_mm: float = 2.0
    body_intensity: Intensity = "mean"
    skin_mm: float = 3.0
    chest_wall_max_depth_mm: float = 40.0
    chest_wall_smoothing_mm: float = 20.0
    rib_width_mm: float = 25.0
    posterior_limit_mm: float = 45.0
    inferior_descent_mm_per_mm: float = 0.15
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
        for name in ("working_spacing_mm", "chest_wall_max_depth_mm", "chest_wall_smoothing_mm", "rib_width_mm",
                     "posterior_limit_mm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"BreastRegionConfig.{name} must be > 0 mm, got {value!r}")
        for name in ("skin_mm", "min_breast_thickness_mm", "inferior_descent_mm_per_mm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InputError(f"BreastRegionConfig.{name} must be >= 0 mm, got {value!r}")

    def to_dict(self) -> dict:
        """JSON-ready copy."""
        return asdict(self)
