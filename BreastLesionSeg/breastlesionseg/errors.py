"""Exception types raised on bad user input.

Every message names the offending input (file, argument, phase) and what is wrong with it,
so the CLI and the Slicer module can show it to a person unchanged.
"""
from __future__ import annotations


class BreastLesionSegError(Exception):
    """Base class of all errors this package raises deliberately."""


class InputError(BreastLesionSegError, ValueError):
    """An input image, exam or argument is unusable (missing, wrong shape, NaN, ...)."""


class GeometryError(InputError):
    """Images do not share a grid or do not overlap in physical space."""


class ModelError(BreastLesionSegError):
    """A model folder, model card or weights file is missing, corrupt or mismatched."""


class DatasetError(BreastLesionSegError):
    """A training dataset or one of its cases is invalid."""


class CancelledError(BreastLesionSegError):
    """Long-running work was cancelled by the user between steps."""
