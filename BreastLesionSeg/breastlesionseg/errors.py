"""Exception types raised on bad user input.

Every message names the offending input (file, argument, phase) and what is wrong with it,
so the CLI and the Slicer module can show it to a person unchanged. Each class carries the process
exit code the CLI returns for it (:attr:`BreastLesionSegError.exit_code`); the codes are defined here only.
"""
from __future__ import annotations

#: process exit codes of the ``breastlesionseg`` command (one place; the CLI and docs read them from here)
EXIT_OK = 0
EXIT_FAILURE = 1  # unexpected failure, or a check that did not pass (e.g. ``dataset check``)
EXIT_BAD_INPUT = 2  # an input image, exam, argument or dataset is unusable
EXIT_MODEL_ERROR = 3  # a model folder, card, weights or network cannot be used
EXIT_INTERRUPTED = 130  # Ctrl-C / cancelled


class BreastLesionSegError(Exception):
    """Base class of all errors this package raises deliberately.

    Attributes:
        exit_code: the CLI's process exit code for this error.
    """

    exit_code: int = EXIT_BAD_INPUT


class InputError(BreastLesionSegError, ValueError):
    """An input image, exam or argument is unusable (missing, wrong shape, NaN, ...)."""


class GeometryError(InputError):
    """Images do not share a grid or do not overlap in physical space."""


class ModelError(BreastLesionSegError):
    """A model folder, model card or weights file is missing, corrupt or mismatched, or the network fails."""

    exit_code = EXIT_MODEL_ERROR


class BackendUnavailableError(BreastLesionSegError):
    """An inference backend cannot run here (runtime not installed, no exported file, device, tolerance).

    Raised by the backends in :mod:`breastlesionseg.runtime` and caught by the backend selection, which
    falls back to the next backend (eager PyTorch last) and says why in one INFO line. It only reaches
    the user when a backend is asked for by a caller that does not fall back.
    """

    exit_code = EXIT_MODEL_ERROR


class DatasetError(BreastLesionSegError):
    """A training dataset or one of its cases is invalid."""


class CancelledError(BreastLesionSegError):
    """Long-running work was cancelled by the user between steps."""

    exit_code = EXIT_INTERRUPTED
