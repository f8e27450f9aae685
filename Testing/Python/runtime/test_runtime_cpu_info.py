"""CPU facts from /proc/cpuinfo (runtime/cpu_info.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from breastlesionseg.runtime import cpu_info


def test_absent_fields_are_empty_and_the_model_falls_back_to_the_default(monkeypatch):
    assert cpu_info.cpuinfo_field("no such field here") == ""
    monkeypatch.setattr(cpu_info, "cpuinfo_field", lambda name: "")
    monkeypatch.setattr(cpu_info.platform, "processor", lambda: "")
    assert cpu_info.cpu_model("unknown CPU") == "unknown CPU"
    assert cpu_info.cpu_flags() == set()


@pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc/cpuinfo").is_file(), reason="Linux only")
def test_flags_are_the_cpuinfo_flags_line_split():
    line = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags"))
    assert cpu_info.cpu_flags() == set(line.split(":", 1)[1].split())
    assert "fpu" in cpu_info.cpu_flags() or not line.strip()
