"""DCE exam assembly: phase ordering, resampling onto the pre grid, registration, derived maps."""
from __future__ import annotations

from .dce_exam import DCEExam
from .derived import percent_enhancement, signal_enhancement_ratio, subtraction
from .loader import ProgressFn, assemble_exam, default_phase_names, load_exam, read_dicom_study_phases
from .registration import RigidRegistrationConfig, register_rigid
from .resample import INTERPOLATORS, resample_to_grid
from .validation import ExamChecks, coverage_fraction, overlap_fraction, require_overlap, validate_exam

__all__ = [
    "DCEExam",
    "ExamChecks",
    "INTERPOLATORS",
    "ProgressFn",
    "RigidRegistrationConfig",
    "assemble_exam",
    "coverage_fraction",
    "default_phase_names",
    "load_exam",
    "overlap_fraction",
    "percent_enhancement",
    "read_dicom_study_phases",
    "register_rigid",
    "require_overlap",
    "resample_to_grid",
    "signal_enhancement_ratio",
    "subtraction",
    "validate_exam",
]
