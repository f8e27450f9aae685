"""The CPU the benchmarks run on, from ``/proc/cpuinfo`` (Linux; empty answers elsewhere)."""
from __future__ import annotations

import platform
from pathlib import Path


def cpuinfo_field(name: str) -> str:
    """Value of the first ``/proc/cpuinfo`` line named ``name`` (``""`` when absent or unreadable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith(name) and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_model(default: str = "") -> str:
    """The CPU model name; else ``platform.processor()``; else ``default``."""
    return cpuinfo_field("model name") or platform.processor() or default


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``avx512f``, ``avx512_bf16``, ...); empty when unknown."""
    return set(cpuinfo_field("flags").split())
