"""Acceptance of the shipped demo model on held-out phantoms (slow; skipped until the model is in models/).

Phantom seeds 0-19 are the project's held-out evaluation set (never used to train the demo model; the model
card's ``training_data`` names the training seeds). The suite checks a few of them;
``benchmarks/bench_segment.py --phantom-eval 20`` reports all 20.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from breastlesionseg.inference import InferenceConfig, SegmentationEngine
from breastlesionseg.metrics import evaluate_segmentation
from breastlesionseg.phantom import PhantomConfig, generate_phantom

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "models" / "mm3dunet-phantom-demo"
SEEDS = (0, 2, 3, 8, 15)  # 2, 3, 15: the 81, 67.5 and 162 mm3 lesions v1 missed; 8: no lesion

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SHIPPED / "model_card.json").is_file(), reason="shipped demo model not in models/ yet"),
]


@pytest.fixture(scope="module")
def phantom_results():
    engine = SegmentationEngine(InferenceConfig(model=str(SHIPPED), device="cpu"))
    assert engine.model_info.is_demo
    rows = []
    for seed in SEEDS:
        phantom = generate_phantom(PhantomConfig(seed=seed))
        result = engine.run(phantom.exam)
        rows.append((phantom, result, evaluate_segmentation(result.lesion_labels, phantom.lesion_labels)))
    return rows


def test_lesion_dice_on_held_out_phantoms(phantom_results):
    dices = [ev["dice"] for phantom, _, ev in phantom_results if phantom.lesions]
    assert dices, "no held-out phantom with lesions among the seeds"
    assert float(np.mean(dices)) >= 0.80, dices


def _missed_and_false_positives(phantom_results):
    missed = []
    fps = []
    for phantom, result, ev in phantom_results:
        for ref in ev["detection"]["reference_lesions"]:
            if ref["volume_mm3"] >= 20.0 and not ref["detected"]:
                missed.append((phantom.config.seed, ref["volume_mm3"]))
        fps.append(ev["detection"]["counts"]["fp"])
    return missed, fps


def test_few_false_positives(phantom_results):
    _, fps = _missed_and_false_positives(phantom_results)
    assert float(np.mean(fps)) <= 1.0, fps


def test_every_lesion_of_20_mm3_detected(phantom_results):
    """Issue 6 acceptance: every lesion >= 20 mm3 found (v2 demo model: 30 of 30 on seeds 0-19)."""
    missed, _ = _missed_and_false_positives(phantom_results)
    assert not missed, missed


def test_outputs_lie_inside_the_breast_on_the_pre_grid(phantom_results):
    for phantom, result, _ in phantom_results:
        assert result.lesion_labels.geometry == phantom.exam.geometry
        assert not np.any(result.lesion_labels.array[result.breast_mask.array == 0])


def test_exam_level_act_score_separates_lesion_free_exams(phantom_results):
    """The ACT "lesion present" score: > 0.5 on every exam with a lesion, < 0.5 on lesion-free ones."""
    for phantom, result, _ in phantom_results:
        assert result.act_score is not None
        if phantom.lesions:
            assert result.act_score > 0.5, (phantom.config.seed, result.act_score)
        else:
            assert result.act_score < 0.5, (phantom.config.seed, result.act_score)
    assert any(not phantom.lesions for phantom, _, _ in phantom_results)
