"""benchmarks/bench_generalisation.py: scoring saved component rows (no engine runs here)."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench(load_repo_script):
    return load_repo_script("benchmarks/bench_generalisation.py")


class _ByVolume:
    """A stand-in confidence model: confidence = 1 for components >= 100 voxels, else 0."""

    report_threshold = 0.5

    def confidence(self, rows):
        return np.array([float(r["n_voxels"] >= 100) for r in rows])


def _row(n_voxels, n_overlap, touches, source):
    return {"n_voxels": n_voxels, "n_overlap": n_overlap, "touches": touches, "source": source}


def _cases():
    with_lesion = {"section": "s", "seed": 0, "ref_volumes_mm3": {"1": 400.0}, "ref_voxels": 200, "breast_dice": 0.9,
                   "rows": [_row(200, 180, [1], "lesion"), _row(150, 0, [], "lymph_node"), _row(30, 0, [], "gland")]}
    lesion_free = {"section": "s", "seed": 1, "ref_volumes_mm3": {}, "ref_voxels": 0, "breast_dice": 0.95,
                   "rows": [_row(120, 0, [], "arterial_vessel")]}
    return [with_lesion, lesion_free]


def test_section_scores_and_false_lesion_sources(bench):
    out = bench.summarise_section(_cases(), _ByVolume())
    assert out["n_exams"] == 2 and out["n_lesion_free"] == 1 and out["breast_dice"] == pytest.approx(0.925)
    everything, reported = out["all"], out["reported"]
    assert everything["dice"] == pytest.approx(2 * 180 / (380 + 200)) and everything["fp_per_exam"] == 1.5
    assert everything["fp_sources"] == {"lymph_node": 1, "arterial_vessel": 1, "gland": 1}
    assert reported["dice"] == pytest.approx(2 * 180 / (350 + 200)) and reported["fp_per_exam"] == 1.0
    assert reported["fp_sources"] == {"lymph_node": 1, "arterial_vessel": 1}  # the small gland one is a candidate
    assert reported["sensitivity"] == 1.0
    table = bench.sources_markdown({"s": out})
    assert table[3] == "| set | arterial_vessel | lymph_node | gland |"  # in SOURCE_NAMES order
    assert table[-1] == "| s | 1 (1) | 1 (1) | 0 (1) |"


def test_rows_saved_without_sources_give_no_sources_table(bench):
    cases = _cases()
    for c in cases:
        for r in c["rows"]:
            del r["source"]
    out = bench.summarise_section(cases, None)
    assert out["all"]["fp_sources"] == {} and bench.sources_markdown({"s": out}) == []
