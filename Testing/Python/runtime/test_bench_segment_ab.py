"""bench_segment --ab: medians per arm, the markdown table and its insertion between markers."""
from __future__ import annotations


def _case(arm, wall, first, load_s):
    return {"arm": arm, "exit": 0, "process_wall_s": wall, "first_progress_line_s": first, "peak_rss_mb": 2000.0,
            "backend_prepare_s": 0.5, "inference_backend": "openvino", "load_average_1min": 3.0,
            "timings_s": {"load_exam": load_s, "total": wall - 2}}


def test_summary_is_the_median_per_arm_and_failed_runs_are_left_out(load_benchmark):
    bench = load_benchmark("bench_segment")
    cases = [_case("a", 10.0, 1.0, 2.0), _case("a", 30.0, 3.0, 4.0), _case("a", 20.0, 2.0, 3.0),
             _case("b", 5.0, 0.5, 1.0), {"arm": "b", "exit": 2, "error": ["bad"]}]
    summary = bench.ab_summary(cases)
    assert summary["a"]["runs"] == 3 and summary["a"]["process_wall_s"] == 20.0
    assert summary["a"]["first_progress_line_s"] == 2.0 and summary["a"]["steps_s"]["load_exam"] == 3.0
    assert summary["b"]["runs"] == 1 and summary["b"]["process_wall_s"] == 5.0


def test_table_is_written_between_the_markers_only(load_benchmark, tmp_path):
    bench = load_benchmark("bench_segment")
    result = {"pairs": 1, "competing_load_processes": 0, "help_s_median": {"a": 0.21},
              "cases": [_case("a", 10.0, 1.0, 2.0)], "summary": bench.ab_summary([_case("a", 10.0, 1.0, 2.0)])}
    table = bench.ab_table([("x.json", result)])
    assert "| x.json: 1 rounds, load average 3-3 | a | openvino | 1 | 10.0 | 1.0 | 0.5 |" in table
    doc = tmp_path / "doc.md"
    doc.write_text("before\n<!-- bench-segment-ab:start -->\nold\n<!-- bench-segment-ab:end -->\nafter\n")
    bench.write_table_into(doc, table)
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text and table in text
