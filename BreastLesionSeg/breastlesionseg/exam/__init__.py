"""DCE exam assembly: phase ordering, resampling onto the pre grid, registration, derived maps."""
from __future__ import annotations

from .dce_exam import DCEExam

__all__ = ["DCEExam"]
