"""Process memory figures and the allocator switch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from breastlesionseg.runtime import allocator


def test_peak_rss_grows_with_a_touched_buffer():
    """Run in a fresh interpreter: in the suite's process, memory freed by earlier tests stays resident
    in the heap (the tuned allocator keeps it) and a new buffer may reuse it without raising the peak."""
    code = (
        "import numpy as np\n"
        "from breastlesionseg.runtime.memory import current_rss_bytes, peak_rss_bytes\n"
        "peak0, current = peak_rss_bytes(), current_rss_bytes()\n"
        "assert peak0 is not None and current is not None\n"
        "assert 10 * 2**20 < current <= peak0, (current, peak0)\n"
        "buf = np.ones((peak0 - current) // 8 + 64 * 2**20 // 8)\n"
        "peak1 = peak_rss_bytes()\n"
        "assert peak1 >= peak0 + 60 * 2**20, (peak0, peak1)\n"
        "print(peak1 - peak0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) >= 60 * 2**20


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
