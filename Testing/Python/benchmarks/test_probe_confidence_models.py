"""benchmarks/probe_confidence_models.py: confidence models fitted on saved validation rows (no network)."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.metrics.component_features import COMPONENT_FEATURE_NAMES


@pytest.fixture(scope="module")
def probe(load_repo_script):
    load_repo_script("benchmarks/bench_generalisation.py")
    return load_repo_script("benchmarks/probe_confidence_models.py")


def _row(rng, true: bool, seed: int):
    """A component whose probability_mean alone separates true lesions (high) from false ones (low)."""
    feats = {n: float(rng.normal()) for n in COMPONENT_FEATURE_NAMES}
    feats["probability_mean"] = float(rng.uniform(0.8, 1.0) if true else rng.uniform(0.3, 0.5))
    return {**feats, "seed": seed, "is_lesion": true, "volume_mm3": 500.0, "n_voxels": 60,
            "n_overlap": 50 if true else 0, "touches": [1] if true else []}


def _cases(section, seeds, rng):
    return [{"section": section, "seed": s, "ref_volumes_mm3": {"1": 500.0}, "ref_voxels": 60, "breast_dice": 0.9,
             "rows": [_row(rng, True, s), _row(rng, False, s), _row(rng, False, s)]} for s in seeds]


def test_quadratic_terms_are_features_squares_and_products(probe):
    z = np.array([[1.0, 2.0, 3.0]])
    q = probe.quadratic_terms(z)
    assert q.shape == (1, 3 + 6)
    assert q[0].tolist() == [1, 2, 3, 1, 2, 3, 4, 6, 9]


@pytest.mark.parametrize("name", ["logistic", "quadratic"])
def test_separable_rows_give_the_ceiling_on_an_unseen_section(probe, name):
    rng = np.random.default_rng(3)
    cases = _cases("validation", range(2000, 2200), rng) + _cases("heldout-x", range(5), rng)
    result = probe.probe(cases, [name])[name]
    assert 0.0 < result["report_threshold"] <= 0.5
    held = result["sections"]["heldout-x"]
    assert held["reported"]["fp_per_exam"] == 0.0 and held["reported"]["sensitivity"] == 1.0
    assert held["reported"]["dice"] == pytest.approx(held["ceiling"]["dice"]) == pytest.approx(100 / 120)
    assert "| heldout-x | 0.833 / 1.00 / 0.00 | 0.833 / 1.00 / 0.00 |" in probe.markdown({name: result})
