"""system_memory.available_memory_bytes: MemAvailable in bytes, None when it cannot be read."""
from __future__ import annotations

from breastlesionseg import system_memory
from breastlesionseg.inference.window_budget import memory_budget_bytes


def test_available_memory_is_read_from_meminfo_in_bytes(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:    2000000 kB\n")
    monkeypatch.setattr(system_memory, "MEMINFO", meminfo)
    assert system_memory.available_memory_bytes() == 2000000 * 1024
    # the inference window budget uses it: half of it, under a larger cap
    assert memory_budget_bytes(fraction=0.5, cap_bytes=4 * 2**30) == 2000000 * 1024 // 2


def test_unreadable_or_incomplete_meminfo_gives_none(tmp_path, monkeypatch):
    monkeypatch.setattr(system_memory, "MEMINFO", tmp_path / "missing")
    assert system_memory.available_memory_bytes() is None
    assert memory_budget_bytes(fraction=0.5, cap_bytes=2**30) == 2**29  # falls back to the cap
    no_line = tmp_path / "meminfo"
    no_line.write_text("MemTotal: 24000000 kB\n")
    monkeypatch.setattr(system_memory, "MEMINFO", no_line)
    assert system_memory.available_memory_bytes() is None
    garbled = tmp_path / "garbled"
    garbled.write_text("MemAvailable: lots\n")
    monkeypatch.setattr(system_memory, "MEMINFO", garbled)
    assert system_memory.available_memory_bytes() is None
