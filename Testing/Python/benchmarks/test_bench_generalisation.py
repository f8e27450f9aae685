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
    assert reported["n_small"] == 0 and reported["sensitivity_small"] is None  # the one lesion is 400 mm3
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


def test_small_lesion_sensitivity_counts_20_to_300_mm3(bench):
    case = {"section": "s", "seed": 0, "ref_volumes_mm3": {"1": 400.0, "2": 90.0, "3": 150.0, "4": 10.0},
            "ref_voxels": 330, "breast_dice": 0.9,
            "rows": [_row(200, 180, [1], "lesion"), _row(40, 30, [2], "lesion"), _row(20, 0, [], "gland")]}
    out = bench.summarise_section([case], None)["all"]
    assert out["sensitivity"] == pytest.approx(2 / 3)  # 400 and 90 found, 150 missed, 10 below 20 mm3
    assert out["n_small"] == 2 and out["sensitivity_small"] == pytest.approx(1 / 2)
    assert "| s | 1 (0) |" in bench.markdown({"model_id": "m", "sha256": "0" * 12, "confidence": "none",
                                              "sections": {"s": bench.summarise_section([case], None)}})


def test_fat_suppression_pairs_differ_only_in_fat_suppression(bench):
    args = bench.argparse.Namespace(validation_seeds=[], duke=False, families=[], family_seeds=[],
                                    lesion_free_seeds=[], oblique_seeds=[], indist_seeds=[],
                                    fat_suppression_seeds=[2100, 2101])
    plan = bench.planned_cases(args)
    assert [section for section, _ in plan] == ["paired-fatsat", "paired-nonfatsat"] * 2
    for (_, on), (_, off) in zip(plan[::2], plan[1::2]):
        assert on.fat_saturated and not off.fat_saturated
        assert bench.dataclasses.replace(on, fat_saturated=False) == off
    with pytest.raises(SystemExit):
        bench.main(["--fat-suppression-seeds", "2000-2001"])  # validation seeds: refused


def test_ceiling_keeps_every_true_component_and_no_false_one(bench):
    out = bench.summarise_section(_cases(), _ByVolume())["ceiling"]
    assert out["dice"] == pytest.approx(2 * 180 / (200 + 200)) and out["fp_per_exam"] == 0.0
    assert out["sensitivity"] == 1.0 and out["fp_sources"] == {}
    case = {"section": "s", "seed": 0, "ref_volumes_mm3": {"1": 400.0, "2": 90.0}, "ref_voxels": 250,
            "breast_dice": 0.9, "rows": [_row(200, 180, [1], "lesion"), _row(20, 0, [], "gland")]}
    missed = bench.summarise_section([case], _ByVolume())["ceiling"]
    assert missed["sensitivity"] == 0.5 and missed["sensitivity_small"] == 0.0  # the network never found lesion 2
    table = bench.ceiling_markdown({"s": bench.summarise_section([case], None)})
    assert table[-1] == "| s | 0.800 | 0.50 | 0.00 |"
