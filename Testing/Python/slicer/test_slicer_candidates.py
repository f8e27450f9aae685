"""DCE-MRI low-confidence candidates in the scene: after Apply, the run's candidates (``candidates.nii.gz`` +
``metrics.json["candidates"]``) are hidden segments "Candidate k (confidence c)", not rows of the lesion
table; the reader can show one and promote it to a lesion.

Real run: the self-test's phantom exam (seed 3, two true lesions) through the panel's Apply with the shipped
demo model, whose card's per-lesion confidence model is kept but whose report threshold is raised from 0.1
to 0.8 (a copy of the model folder): the lesion found with confidence 0.86 is reported, the true lesion
found with confidence 0.74 becomes a candidate.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.geometry import Volume
from BreastLesionSegLib import scene_io, segmentation_nodes, tables
from BreastLesionSegLib.logic import SceneLogic
from BreastLesionSegLib.panel_actions import PanelActions
from BreastLesionSegLib.selftest import SERIES_NAMES

ROOT = Path(__file__).resolve().parents[3]
DEMO_MODEL = ROOT / "models" / "mm3dunet-phantom-demo"
STRICT_ID = "phantom-demo-strict-report"


@pytest.fixture(scope="module")
def strict_model(tmp_path_factory):
    """The shipped demo model with lesion_confidence.report_threshold 0.8 (same weights, new id)."""
    card = json.loads((DEMO_MODEL / "model_card.json").read_text(encoding="utf-8"))
    if not isinstance(card.get("lesion_confidence"), dict):
        pytest.fail(f"the shipped demo model's card at {DEMO_MODEL} has no lesion_confidence model")
    folder = tmp_path_factory.mktemp("models") / STRICT_ID
    shutil.copytree(DEMO_MODEL, folder)
    card["model_id"] = STRICT_ID
    card["lesion_confidence"]["report_threshold"] = 0.8
    (folder / "model_card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def selftest_phantom():
    from breastlesionseg.phantom import PhantomConfig, generate_phantom

    return generate_phantom(PhantomConfig(seed=3, size=(224, 128, 64), n_lesions=(1, 2),
                                          lesion_diameter_mm=(12.0, 25.0)))


def _dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / max(int(a.sum()) + int(b.sum()), 1)


def test_candidates_are_hidden_segments_outside_the_table_and_can_be_promoted(ctx, strict_model, selftest_phantom,
                                                                              panel_values, tmp_path):
    nodes = [scene_io.node_from_volume(ctx.scene, vol, SERIES_NAMES[k])
             for k, vol in enumerate(selftest_phantom.exam.phases)]
    values = panel_values(model=STRICT_ID, user_model_folders=[str(strict_model.parent)], device="cpu",
                          pre_volume=nodes[0], post_volumes=nodes[1:])
    actions = PanelActions(SceneLogic(ctx, work_dir=tmp_path / "work", threads=2))
    actions.state(values)  # the strict card's threshold and minimum volume, as the panel does
    actions.apply(values)
    out = None
    for _ in range(6000):  # the widget's timer (bounded: about 10 min at most)
        out = actions.poll(values)
        if out.finished:
            break
        time.sleep(0.1)
    assert out.finished and not out.error, out.error
    result, selection = out.shown
    seg = result.segmentation
    metrics = result.metrics
    (candidate,) = metrics["candidates"]  # measured: one candidate, confidence 0.742, 931.5 mm3
    assert candidate["confidence"] < 0.8 <= min(metrics["lesion_confidence"])
    names = segmentation_nodes.segment_names(seg, segmentation_nodes.segment_ids(seg))
    expected_name = f"Candidate 1 (confidence {candidate['confidence']:.2f})"
    assert names == ["Breast left", "Breast right", "Lesion 1", expected_name]
    assert result.candidate_segment_ids == ["candidate_1"] and result.lesion_segment_ids == ["lesion_1"]
    display = seg.GetDisplayNode()
    assert not display.GetSegmentVisibility("candidate_1") and display.GetSegmentVisibility("lesion_1")
    assert [r["Segment"] for r in tables.table_to_dicts(result.table)] == ["Lesion 1", "Total"]
    assert "1 low-confidence candidate(s) hidden" in out.status
    pre = nodes[0]
    voxel_mm3 = float(np.prod(pre.GetSpacing()))
    cand_mask = segmentation_nodes.export_segment_mask(ctx, seg, "candidate_1", pre)
    assert cand_mask.sum() * voxel_mm3 == pytest.approx(candidate["volume_mm3"], rel=1e-6)
    truth = np.asarray(selftest_phantom.lesion_labels.array) > 0
    lesion_mask = segmentation_nodes.export_segment_mask(ctx, seg, "lesion_1", pre)
    assert not np.logical_and(cand_mask, lesion_mask).any() and np.logical_and(cand_mask, truth).any()

    # Update metrics leaves the candidate out of the table
    result = actions.update_metrics(values)[0]
    assert [r["Segment"] for r in tables.table_to_dicts(result.table)] == ["Lesion 1", "Total"]
    dice_before = _dice(lesion_mask, truth)

    # the reader shows it, judges it a lesion and promotes it: a shown "Lesion 2" with the Mass terminology, in the table
    display.SetSegmentVisibility("candidate_1", True)
    result = actions.logic.promote_candidate(actions.current_result(values), selection, "candidate_1")
    segment = seg.GetSegmentation().GetSegment("candidate_1")
    assert segment.GetName() == "Lesion 2" and display.GetSegmentVisibility("candidate_1")
    assert segmentation_nodes.classify_segment(segment.GetName(), segment.GetTerminology())[0] == "lesion"
    assert "Mass" in segment.GetTerminology() and result.candidate_segment_ids == []
    rows = tables.table_to_dicts(result.table)
    assert sorted(r["Segment"] for r in rows[:-1]) == ["Lesion 1", "Lesion 2"] and rows[-1]["Segment"] == "Total"
    labels = segmentation_nodes.labels_from_segmentation(ctx, seg, pre)
    dice_after = _dice(labels.lesion_labels.array > 0, truth)
    print(f"lesion Dice vs the phantom truth: reported only {dice_before:.3f}, with the promoted candidate {dice_after:.3f}")
    assert dice_after > dice_before
    with pytest.raises(InputError, match="not a lesion candidate"):
        actions.logic.promote_candidate(result, selection, "candidate_1")


def test_a_renamed_candidate_counts_as_a_lesion(ctx, synthetic_results):
    """Promoting by hand in Segment Editor: renaming "Candidate ..." to "Lesion ..." makes it a lesion."""
    (pre, *_), _, lesions = synthetic_results
    node = scene_io.node_from_volume(ctx.scene, pre, "pre")
    seg = segmentation_nodes.create_segmentation_node(ctx, node, "result")
    ids = segmentation_nodes.write_candidate_segments(
        ctx, seg, node, Volume(np.asarray(lesions.array, np.uint16), lesions.geometry),
        [{"id": 2, "confidence": 0.07}, {"id": 1, "confidence": 0.2}, {"id": 5, "confidence": 0.01}])
    assert ids == ["candidate_2", "candidate_1"]  # label 5 is not in the map: skipped
    names = segmentation_nodes.segment_names(seg, ids)
    assert names == ["Candidate 2 (confidence 0.07)", "Candidate 1 (confidence 0.20)"]
    assert segmentation_nodes.labels_from_segmentation(ctx, seg, node).lesion_segment_ids == []
    seg.GetSegmentation().GetSegment("candidate_1").SetName("Lesion 7")
    assert segmentation_nodes.candidate_segment_ids(seg) == ["candidate_2"]
    labels = segmentation_nodes.labels_from_segmentation(ctx, seg, node)
    assert labels.lesion_segment_ids == ["candidate_1"]
    assert int((labels.lesion_labels.array > 0).sum()) == int((np.asarray(lesions.array) == 1).sum())
