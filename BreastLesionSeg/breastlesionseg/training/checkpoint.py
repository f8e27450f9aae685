"""Safe loading of training checkpoints and weights files: tensors and plain containers only.

``torch.load(..., weights_only=True)`` refuses pickled code, but its error text advises re-running with
``weights_only=False`` - advice that would execute whatever the file carries. The errors raised here name the
file and what is wrong with it and never relay that advice.
"""
from __future__ import annotations

import logging
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import BreastLesionSegError, InputError

log = logging.getLogger(__name__)

_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)")


def _cause(exc: BaseException) -> str:
    """The first sentence of a torch/zip error, without any advice about unsafe loading."""
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(str(exc).split()))
    kept = [s for s in sentences if "weights_only" not in s and "arbitrary code" not in s and s]
    return kept[0] if kept else type(exc).__name__


def safe_torch_load(path: str | os.PathLike, what: str = "checkpoint",
                    error_type: type[BreastLesionSegError] = InputError) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU with clear, safe errors.

    Args:
        path: the file.
        what: what the file is, for messages (``"checkpoint"``, ``"weights"``).
        error_type: the project exception to raise (``InputError`` for user inputs, ``ModelError`` for models).

    Returns:
        The deserialised object (tensors, dicts, lists, numbers, strings).

    Raises:
        error_type: missing file; pickled objects other than tensors/containers (names the first one, refuses);
            truncated or corrupt file.
    """
    p = Path(path)
    if not p.is_file():
        raise error_type(f"{what} '{p}' does not exist")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _GLOBAL.search(str(exc))
        raise error_type(
            f"{what} '{p}' holds pickled objects other than tensors and plain containers"
            + (f" (it refers to {found.group(1)})" if found else "")
            + "; refusing to load it, because loading it could run code hidden in the file. Only use files written "
            "by breastlesionseg from a source you trust; re-create it (e.g. train again without --resume)."
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise error_type(f"{what} '{p}' cannot be read: the file is truncated or corrupt ({_cause(exc)})") from None


def read_checkpoint(path: str | os.PathLike, expected_format: str) -> dict[str, Any]:
    """Read a training checkpoint written by :mod:`breastlesionseg.training.loop` (``--resume``).

    Args:
        path: ``checkpoints/last.pt`` of a training output folder.
        expected_format: the checkpoint format tag the loop writes.

    Raises:
        InputError: unreadable/unsafe file (see :func:`safe_torch_load`) or not a checkpoint of this format; the
            message says to delete it or start without ``--resume``.
    """
    try:
        state = safe_torch_load(path, "checkpoint")
    except InputError as exc:
        raise InputError(f"{exc} Delete it or start without --resume.") from None
    if not isinstance(state, dict) or state.get("format") != expected_format:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise InputError(f"'{path}' is not a breastlesionseg training checkpoint (format {expected_format}, got "
                         f"{got!r}); delete it or start without --resume.")
    return state
