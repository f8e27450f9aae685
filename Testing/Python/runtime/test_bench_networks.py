"""benchmarks/bench_networks.py --quick runs and writes the documented JSON keys with positive numbers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_bench_networks_quick_json(tmp_path):
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_networks.py"), "--quick", "--models", "mm3dunet_t6",
           "--backends", "eager,fused_cec", "--inputs", "window", "--output", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = list(tmp_path.glob("bench_networks_quick_*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    for key in ("machine", "matmul_peak_gflops", "results", "inputs", "load_average_end", "window_source"):
        assert key in data
    assert data["machine"]["threads"] == 2 and data["machine"]["cpu_count"] >= 1
    assert data["matmul_peak_gflops"] > 0
    recs = {r["backend"]: r for r in data["results"]}
    assert set(recs) == {"eager", "fused_cec"}
    for rec in recs.values():
        assert rec["model"] == "mm3dunet_t6" and rec["input"] == "window"
        assert rec["flops"] > 0 and rec["params"] > 0
        assert rec["forward_s_median"] > 0 and rec["cpu_s_median"] > 0 and rec["achieved_gflops"] > 0
        assert rec["memory"]["peak_rss_delta_bytes"] > 0 and rec["memory"]["peak_rss_bytes"] > 0
        assert rec["max_abs_vs_eager"] <= 1e-3
    assert recs["eager"]["speedup_vs_eager"] == pytest.approx(1.0)
    assert "| mm3dunet_t6 |" in proc.stdout and "fused_cec" in proc.stdout
