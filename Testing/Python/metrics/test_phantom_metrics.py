"""lesion_metrics on phantom ground truth reproduces the phantom's own lesion table."""
from __future__ import annotations

import numpy as np
import pytest

phantom = pytest.importorskip("breastlesionseg.phantom", reason="phantom generator not available")

from breastlesionseg.metrics import evaluate_segmentation, lesion_metrics  # noqa: E402


@pytest.mark.parametrize("seed", [3, 11])
def test_metrics_of_ground_truth_match_phantom(seed):
    config = phantom.PhantomConfig(seed=seed, size=(96, 64, 32), n_lesions=(3, 3), lesion_diameter_mm=(8, 20),
                                   oblique_deg=10)
    ph = phantom.generate_phantom(config)
    m = lesion_metrics(ph.exam, ph.lesion_labels, ph.breast_mask)
    truth = {les["index"]: les for les in ph.lesions}
    assert [les["label"] for les in m["lesions"]] == sorted(truth)
    for les in m["lesions"]:
        t = truth[les["label"]]
        assert les["volume_mm3"] == pytest.approx(t["volume_mm3"], rel=1e-6)
        assert les["kinetic_curve_type"] == t["kinetics"]
        assert les["side"] == t["side"]
        np.testing.assert_allclose(les["centroid_lps_mm"], t["centroid_lps_mm"], atol=1e-3)
    bv = m["breast_volumes"]
    truth_ml = ph.breast_volumes_ml
    assert (bv["left_ml"], bv["right_ml"]) == pytest.approx((truth_ml["left"], truth_ml["right"]))
    # the truth against itself: perfect scores
    e = evaluate_segmentation(ph.lesion_labels, ph.lesion_labels)
    assert (e["dice"], e["hd95_mm"], e["detection"]["counts"]["fn"]) == (1.0, 0.0, 0)
