"""Process memory figures from ``/proc/self/status`` (Linux): peak and current resident set size."""
from __future__ import annotations

from pathlib import Path


def _status_kib(field: str) -> int | None:
    path = Path("/proc/self/status")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def peak_rss_bytes() -> int | None:
    """Peak resident set size of this process so far (``VmHWM``), bytes; ``None`` off Linux."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib * 1024


def current_rss_bytes() -> int | None:
    """Current resident set size (``VmRSS``), bytes; ``None`` off Linux."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024
