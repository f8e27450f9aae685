"""Claim an output folder for one run: never two runs writing the same folder, writability checked first.

A run creates the lock file ``.<folder name>.lock`` beside the output folder with ``O_CREAT | O_EXCL`` (atomic
on local and NFSv3+ file systems) before any work; a second run on the same folder fails at once, naming the
run that holds it. A lock left by a killed run (its process is gone) is taken over with a WARNING, and the
hidden ``.<folder name>.partial-*`` folders such a run leaves behind are removed with a WARNING.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from .atomic import DISK_FULL_ERRNOS

log = logging.getLogger(__name__)

#: the least free space (bytes) an output location must have before a run starts
MIN_FREE_BYTES = 64 << 20


def lock_path(out: Path) -> Path:
    """The lock file of output folder/file ``out``: ``.<name>.lock`` beside it."""
    return out.parent / f".{out.name}.lock"


def partial_folders(out: Path) -> list[Path]:
    """Hidden temporary folders of (possibly interrupted) writes into ``out``."""
    return sorted(out.parent.glob(f".{out.name}.partial-*"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _read_lock(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _holder_alive(info: dict) -> bool:
    """Whether the run described by a lock file still runs (a lock from another machine counts as alive)."""
    pid = info.get("pid")
    if not isinstance(pid, int):
        return False
    if info.get("host") != socket.gethostname():
        return True
    return _pid_alive(pid)


def _unwritable(out: Path, exc: OSError) -> InputError:
    if exc.errno in DISK_FULL_ERRNOS:
        reason = "the disk is full"
    elif isinstance(exc, (FileExistsError, NotADirectoryError)):
        reason = "a file is in the way of a folder on that path"
    else:
        reason = exc.strerror or type(exc).__name__
    return InputError(f"output '{out}' cannot be written: {reason} (in '{out.parent}'). Choose another location.")


def _create_lock(lock: Path, out: Path) -> bool:
    """Create ``lock`` exclusively; ``False`` when it exists already."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        raise _unwritable(out, exc) from exc
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "output": str(out)}
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(info) + "\n")
    except OSError as exc:
        lock.unlink(missing_ok=True)
        raise _unwritable(out, exc) from exc
    return True


def _take_over_stale(lock: Path, info: dict) -> None:
    """Move a dead run's lock aside (atomic: of two runs finding it stale, one moves it) and delete it."""
    stale = lock.with_name(f"{lock.name}.stale-{os.getpid()}")
    try:
        os.rename(lock, stale)
    except FileNotFoundError:
        return  # another run took it over first; the next exclusive create decides
    stale.unlink(missing_ok=True)
    log.warning("took over the lock of an interrupted run (pid %s on %s, started %s) on '%s'", info.get("pid"),
                info.get("host"), info.get("started"), info.get("output", lock))


def acquire_output_lock(out: str | os.PathLike) -> Path:
    """Create the lock of ``out`` (creating its parent folder); returns the lock file.

    Raises:
        InputError: another live run holds it, or the location cannot be written / has no free space.
    """
    out = Path(out).absolute()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(out, exc) from exc
    lock = lock_path(out)
    for _attempt in range(3):
        if _create_lock(lock, out):
            break
        info = _read_lock(lock)
        if _holder_alive(info):
            raise InputError(
                f"output '{out}' is being written by another run (pid {info.get('pid')} on {info.get('host')}, "
                f"started {info.get('started')}); wait for it to finish or choose another output. (If no such run "
                f"exists, delete '{lock}'.)"
            )
        _take_over_stale(lock, info)
    else:
        raise InputError(f"output '{out}': could not take the lock '{lock}' (other runs keep claiming it)")
    free = shutil.disk_usage(out.parent).free
    if free < MIN_FREE_BYTES:
        lock.unlink(missing_ok=True)
        raise InputError(f"output '{out}': only {free / (1 << 20):.0f} MiB free in '{out.parent}' (at least "
                         f"{MIN_FREE_BYTES >> 20} MiB needed); free some space or choose another location.")
    return lock


def require_writable_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and prove it writable (a probe file is written and removed) with free space.

    For commands whose output is a folder they fill over a long time (``train``): the check happens before any
    work instead of after the first epoch.

    Raises:
        InputError: naming the folder and the reason (permission, read-only or full file system, a file in
            the way).
    """
    out = Path(folder).absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"output '{out}' is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=out)
        try:
            os.write(fd, b"probe")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise _unwritable(out, exc) from exc
    free = shutil.disk_usage(out).free
    if free < MIN_FREE_BYTES:
        raise InputError(f"output '{out}': only {free / (1 << 20):.0f} MiB free (at least {MIN_FREE_BYTES >> 20} MiB "
                         f"needed); free some space or choose another location.")
    return out


def remove_stale_partials(out: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.partial-*`` folders of interrupted runs (call only while holding the lock)."""
    out = Path(out).absolute()
    removed = []
    for folder in partial_folders(out):
        shutil.rmtree(folder, ignore_errors=True)
        log.warning("removed '%s': incomplete output of an interrupted run", folder)
        removed.append(folder)
    return removed


#: locks this process holds -> nesting depth (a command claims its output, then the writer claims it again)
_HELD: dict[Path, int] = {}


@contextlib.contextmanager
def claim_output(out: str | os.PathLike) -> Iterator[Path]:
    """Hold ``out`` for this run: lock it, clean interrupted runs' partial folders, release on exit.

    Re-entrant within one process (a nested claim of the same output is a no-op).

    Yields:
        ``out`` as given (a :class:`~pathlib.Path`).

    Raises:
        InputError: see :func:`acquire_output_lock`.
    """
    key = Path(out).absolute()
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield Path(out)
        finally:
            _HELD[key] -= 1
        return
    lock = acquire_output_lock(out)
    _HELD[key] = 1
    try:
        remove_stale_partials(out)
        yield Path(out)
    finally:
        _HELD.pop(key, None)
        if _read_lock(lock).get("pid") == os.getpid():
            lock.unlink(missing_ok=True)
