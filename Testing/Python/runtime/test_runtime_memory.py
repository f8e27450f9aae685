"""Process memory figures (peak and current RSS)."""
from __future__ import annotations

import subprocess
import sys


def test_peak_rss_grows_with_a_touched_buffer():
    """Run in a fresh interpreter: in the suite's process, memory freed by earlier tests stays resident
    in the heap and a new buffer may reuse it without raising the peak."""
    code = (
        "import numpy as np\n"
        "from breastlesionseg.runtime.memory import current_rss_bytes, peak_rss_bytes\n"
        "current = current_rss_bytes()\n"
        "peak0 = peak_rss_bytes()\n"
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
