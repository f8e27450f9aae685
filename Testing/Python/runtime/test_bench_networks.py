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
           "--backends", "eager,openvino", "--inputs", "window", "--output", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = list(tmp_path.glob("bench_networks_quick_*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text(encoding="utf-8"))
    for key in ("machine", "matmul_peak_gflops", "results", "inputs", "load_average_end", "window_source"):
        assert key in data
    assert data["machine"]["threads"] == 2 and data["machine"]["cpu_count"] >= 1
    assert data["matmul_peak_gflops"] > 0
    recs = {r["backend"]: r for r in data["results"]}
    assert set(recs) == {"eager", "openvino"}
    assert data["machine"]["openvino"]  # the runtime's version is recorded
    for rec in recs.values():
        assert rec["model"] == "mm3dunet_t6" and rec["input"] == "window"
        assert rec["flops"] > 0 and rec["params"] > 0
        assert rec["forward_s_median"] > 0 and rec["cpu_s_median"] > 0 and rec["achieved_gflops"] > 0
        assert rec["memory"]["peak_rss_delta_bytes"] > 0 and rec["memory"]["peak_rss_bytes"] > 0
        assert rec["max_abs_vs_eager"] <= 1e-3
    assert recs["eager"]["speedup_vs_eager"] == pytest.approx(1.0)
    assert "| mm3dunet_t6 |" in proc.stdout and "openvino" in proc.stdout


def test_speed_target_compares_each_model_on_its_fastest_exact_backend(load_benchmark):
    bench = load_benchmark("bench_networks")
    recs = [
        {"input": "paper", "input_shape": [1, 1, 32, 256, 256], "model": "mm3dunet_t12_act", "backend": "eager",
         "forward_s_median": 8.0},
        {"input": "paper", "input_shape": [1, 1, 32, 256, 256], "model": "mm3dunet_t12_act", "backend": "openvino",
         "forward_s_median": 1.2},
        {"input": "paper", "input_shape": [1, 1, 32, 256, 256], "model": "mm3dunet_t12_act", "backend": "bf16",
         "forward_s_median": 0.1},  # not a backend of the package (deleted): not part of the comparison
        {"input": "paper", "input_shape": [1, 1, 32, 256, 256], "model": "unet3d_table1", "backend": "eager",
         "forward_s_median": 1.5},
        {"input": "paper", "input_shape": [1, 1, 32, 256, 256], "model": "unet3d_table1", "backend": "openvino",
         "forward_s_median": 0.9},
        {"input": "paper", "model": "unet3d_table1", "backend": "openvino", "skipped": "not installed"},
        {"input": "window", "input_shape": [1, 3, 16, 32, 32], "model": "mm3dunet_t12_act", "backend": "eager",
         "forward_s_median": 0.05},
        {"input": "window", "input_shape": [1, 3, 16, 32, 32], "model": "unet3d_table1", "backend": "eager",
         "forward_s_median": 0.2},
    ]
    targets = {t["input"]: t for t in bench.speed_targets(recs)}
    paper = targets["paper"]
    assert paper["mm3dunet_backend"] == "openvino" and paper["dense_backend"] == "openvino"
    assert paper["dense_over_mm"] == pytest.approx(0.75) and not paper["met"]
    assert targets["window"]["dense_over_mm"] == pytest.approx(4.0) and targets["window"]["met"]


def test_interleaved_ratio_alternates_the_order_and_reports_per_pair_ratios(load_benchmark):
    bench = load_benchmark("bench_networks")
    now = [0.0]
    calls = []

    def run(name: str, seconds: float):
        def go():
            calls.append(name)
            now[0] += seconds
        return go

    out = bench.interleaved_ratio(run("mm", 1.0), run("dense", 2.5), pairs=3, clock=lambda: now[0])
    assert calls == ["mm", "dense", "mm", "dense", "dense", "mm", "mm", "dense"]  # warm-up, then alternating
    assert out["pairs"] == 3 and out["ratios"] == [2.5, 2.5, 2.5]
    assert out["ratio_median"] == out["ratio_min"] == out["ratio_max"] == 2.5
    assert (out["fast_s_median"], out["slow_s_median"]) == (1.0, 2.5)
    with pytest.raises(ValueError, match="pairs"):
        bench.interleaved_ratio(run("mm", 1.0), run("dense", 1.0), pairs=0)
