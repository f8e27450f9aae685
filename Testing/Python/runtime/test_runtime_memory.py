"""Process memory figures and the allocator switch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from breastlesionseg.runtime import allocator
from breastlesionseg.runtime.memory import current_rss_bytes, peak_rss_bytes


def test_peak_rss_grows_with_a_touched_buffer():
    peak0 = peak_rss_bytes()
    current = current_rss_bytes()
    assert peak0 is not None and current is not None
    assert 10 * 2**20 < current <= peak0  # a python + torch process is > 10 MB
    buf = np.ones((peak0 - current) // 8 + 64 * 2**20 // 8)  # pushes RSS at least 64 MiB above the old peak
    assert peak_rss_bytes() >= peak0 + 60 * 2**20
    del buf


def test_allocator_tuning_can_be_disabled(monkeypatch):
    monkeypatch.setenv(allocator.DISABLE_ENV, "1")
    monkeypatch.setitem(allocator._state, "tuned", False)
    assert allocator.tune_cpu_allocator() is False
    assert allocator.allocator_tuned() is False


def test_allocator_tuning_applies_once_in_a_fresh_process():
    """Loads allocator.py alone (no torch import) in a child process, so the test process is untouched."""
    path = Path(allocator.__file__)
    code = ("import importlib.util as u; s = u.spec_from_file_location('a', %r); m = u.module_from_spec(s); "
            "s.loader.exec_module(m); print(m.tune_cpu_allocator(), m.tune_cpu_allocator(), m.allocator_tuned())"
            % str(path))
    env = {k: v for k, v in os.environ.items() if k != allocator.DISABLE_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, timeout=60)
    expected = "True True True" if sys.platform.startswith("linux") else "False False False"
    assert out.stdout.strip() == expected
