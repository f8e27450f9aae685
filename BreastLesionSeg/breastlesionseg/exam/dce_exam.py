"""The DCE-MRI exam: ordered phases on one grid (pre-contrast first, then post-contrast in time order)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import GeometryError, InputError
from ..geometry import Geometry, Volume


@dataclass
class DCEExam:
    """An ordered breast DCE-MRI exam whose phases share the pre-contrast grid.

    Attributes:
        phases: ``[pre, post1, post2, ...]``; every phase on ``phases[0].geometry``.
        acquisition_times_s: optional time of each phase after the first, in seconds
            (from DICOM trigger/acquisition time), same length as ``phases`` when known.
        notes: human-readable notes on how the exam was assembled (series chosen, resampling, registration).
        warnings: problems the user accepted or must review (e.g. an implausible phase order); every command
            shows them and ``segment`` records them in ``metrics.json``.
    """

    phases: list[Volume]
    acquisition_times_s: list[float] | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.phases) < 2:
            names = [p.name or p.source for p in self.phases]
            raise InputError(
                f"a DCE exam needs a pre-contrast and at least one post-contrast phase; got {len(self.phases)} "
                f"phase(s): {names}"
            )
        ref = self.phases[0].geometry
        for p in self.phases[1:]:
            if not p.geometry.same_grid(ref):
                raise GeometryError(
                    f"phase '{p.name or p.source}' is not on the pre-contrast grid of '{self.phases[0].name or self.phases[0].source}'"
                    f" ({p.geometry.to_dict()} vs {ref.to_dict()}); resample it first (breastlesionseg.exam.resample)"
                )

    @property
    def geometry(self) -> Geometry:
        """The pre-contrast grid every phase lies on."""
        return self.phases[0].geometry

    @property
    def pre(self) -> Volume:
        """The pre-contrast phase."""
        return self.phases[0]

    @property
    def post(self) -> list[Volume]:
        """The post-contrast phases in time order."""
        return self.phases[1:]

    @property
    def names(self) -> list[str]:
        """Phase names in order."""
        return [p.name for p in self.phases]

    def stack(self, dtype: type = np.float32) -> np.ndarray:
        """All phases as one array of shape ``(P, z, y, x)``."""
        return np.stack([np.asarray(p.array, dtype=dtype) for p in self.phases])
