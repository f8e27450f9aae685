"""Atomic file writes: write to a temporary file in the target folder, then rename.

A crash or an error half-way never leaves a truncated file behind, and an existing file is
only replaced when ``overwrite`` is true.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from ..errors import InputError


def _current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    The temporary name keeps the target's full suffix (e.g. ``.seg.nrrd``, ``.nii.gz``) so writers that
    pick the format from the extension work.

    Raises:
        InputError: ``target`` exists and ``overwrite`` is false.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise InputError(f"refusing to overwrite existing file '{target}' (use --force / overwrite=True)")
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes) or ".tmp"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600 files; keep the user's umask instead
    try:
        yield tmp
        if overwrite:
            os.replace(tmp, target)
        else:
            _publish_new(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _publish_new(tmp: Path, target: Path) -> None:
    """Move ``tmp`` onto ``target`` only if ``target`` still does not exist (no-clobber, atomic via a hard link).

    Raises:
        InputError: another process created ``target`` in the meantime.
    """
    try:
        os.link(tmp, target)  # fails if target exists: of two concurrent writers exactly one succeeds
    except FileExistsError:
        raise InputError(f"'{target}' was created by another process while this one was writing it; refusing to "
                         f"overwrite it (use --force / overwrite=True)") from None
    except OSError:  # file system without hard links: best effort
        if target.exists():
            raise InputError(f"refusing to overwrite existing file '{target}' (use --force / overwrite=True)") from None
        os.replace(tmp, target)


def write_atomic(target: str | os.PathLike, writer: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``target`` atomically; returns ``target``."""
    with atomic_path(target, overwrite=overwrite) as tmp:
        writer(tmp)
    return Path(target)


def write_text_atomic(target: str | os.PathLike, text: str, overwrite: bool = False) -> Path:
    """Write a text file atomically (UTF-8)."""
    return write_atomic(target, lambda p: p.write_text(text, encoding="utf-8"), overwrite=overwrite)
