"""How much memory this machine can still give (shared by inference's window budget and training's cache check)."""
from __future__ import annotations

from pathlib import Path

#: Linux's estimate of the memory available to a new workload without swapping
MEMINFO = Path("/proc/meminfo")


def available_memory_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes; None where it cannot be read (not Linux, unreadable)."""
    try:
        for line in MEMINFO.read_text(encoding="utf-8").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
