"""Atomic file writes: write to a temporary file in the target folder, then rename.

A crash or an error half-way never leaves a truncated file behind, and an existing file is
only replaced when ``overwrite`` is true.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from ..errors import InputError

#: errno values of a full disk or an exhausted quota
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
#: a failed write on a device with less free space than this (bytes) is reported as a full disk
FULL_DEVICE_BYTES = 1 << 20


def is_disk_full(exc: BaseException, target: str | os.PathLike) -> bool:
    """Whether ``exc``, raised while writing ``target``, means the disk (or quota) is full.

    An ``OSError`` says so by its errno; writers that wrap the system error (SimpleITK and ``torch.save``
    raise ``RuntimeError``) are recognised by the device having less than :data:`FULL_DEVICE_BYTES` free.
    """
    if getattr(exc, "errno", None) in DISK_FULL_ERRNOS:
        return True
    return isinstance(exc, (OSError, RuntimeError)) and _device_nearly_full(Path(target))


def _device_nearly_full(target: Path) -> bool:
    """Whether the device holding ``target`` (or its nearest existing parent) has under 1 MiB free."""
    folder = target if target.is_dir() else target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free < FULL_DEVICE_BYTES
    except OSError:
        return False


@contextlib.contextmanager
def disk_full_reported(target: str | os.PathLike, consequence: str) -> Iterator[None]:
    """Turn a full disk (or quota) while writing ``target`` into an :class:`InputError` that says so.

    Args:
        target: the file or folder being written (named in the message).
        consequence: what the user should know about the state left behind, e.g.
            ``"the previous checkpoint is unchanged"``.

    Raises:
        InputError: the block failed on a full disk (:func:`is_disk_full`); other errors pass through unchanged.
    """
    try:
        yield
    except (OSError, RuntimeError) as exc:
        if not is_disk_full(exc, target):
            raise
        raise InputError(f"no space left on the device while writing '{target}'; {consequence}. Free some space "
                         f"or choose another location.") from exc


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
        InputError: ``target`` exists and ``overwrite`` is false, or the disk is full (the temporary file
            is removed; an existing ``target`` is left as it was).
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
    unchanged = "the existing file is unchanged" if target.exists() else "nothing was written"
    try:
        with disk_full_reported(target, unchanged):
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
