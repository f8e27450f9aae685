"""DCE-MRI low-confidence candidates in the scene: after Apply, the run's candidates (``candidates.nii.gz`` +
``metrics.json["candidates"]``) are hidden segments "Candidate k (confidence c)", not rows of the lesion
table but rows of a candidate table (confidence, volume, promoted); the reader can show one and promote it
to a lesion.

Real run: the self-test's phantom exam (seed 3, two true lesions, 1,598 and 932 mm3 found) through the panel's
Apply with the shipped demo model's weights, whose card's per-lesion confidence model is replaced (in a copy of
the model folder) by one that ranks by volume alone, reporting components above ~1,200 mm3: the larger lesion
is reported, the smaller true lesion becomes a candidate. (The calibrated model finds both lesions with about
the same confidence, so a raised threshold cannot split them reliably; the calibration has its own tests.)
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.exam import DCEExam
from breastlesionseg.geometry import Volume
from breastlesionseg.io import write_volume
from breastlesionseg.metrics import lesion_metrics
from BreastLesionSegLib import phases, scene_io, segmentation_nodes, tables
from BreastLesionSegLib.logic import SceneLogic
from BreastLesionSegLib.panel_actions import PanelActions
from BreastLesionSegLib.settings import INPUT_VOLUMES
from BreastLesionSegLib.selftest import SERIES_NAMES

ROOT = Path(__file__).resolve().parents[3]
DEMO_MODEL = ROOT / "models" / "mm3dunet-phantom-demo"
STRICT_ID = "phantom-demo-strict-report"
STRICT_THRESHOLD = 0.5
#: the volume-only confidence model: 0.5 at this volume, higher for larger components
SPLIT_VOLUME_MM3 = 1200.0


@pytest.fixture(scope="module")
def strict_model(tmp_path_factory):
    """The shipped demo model's weights with a volume-only lesion_confidence model (new id)."""
    card = json.loads((DEMO_MODEL / "model_card.json").read_text(encoding="utf-8"))
    if not isinstance(card.get("lesion_confidence"), dict):
        pytest.fail(f"the shipped demo model's card at {DEMO_MODEL} has no lesion_confidence model")
    folder = tmp_path_factory.mktemp("models") / STRICT_ID
    shutil.copytree(DEMO_MODEL, folder)
    card["model_id"] = STRICT_ID
    card["lesion_confidence"].update(feature_names=["log10_volume_mm3"], mean=[float(np.log10(SPLIT_VOLUME_MM3))],
                                     scale=[0.1], coef=[1.0], intercept=0.0, report_threshold=STRICT_THRESHOLD)
    (folder / "model_card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def selftest_phantom():
    from breastlesionseg.phantom import PhantomConfig, generate_phantom

    return generate_phantom(PhantomConfig(seed=3, size=(224, 128, 64), n_lesions=(1, 2),
                                          lesion_diameter_mm=(12.0, 25.0)))


def _dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / max(int(a.sum()) + int(b.sum()), 1)


def _candidate_rows(table):
    return [(r["Segment"], r["candidate_id"], r["confidence"], r["volume_mm3"], r["promoted"])
            for r in tables.table_to_dicts(table)]


def _candidate_tables(scene):
    return [scene.GetNthNodeByClass(i, "vtkMRMLTableNode")
            for i in range(scene.GetNumberOfNodesByClass("vtkMRMLTableNode"))
            if scene.GetNthNodeByClass(i, "vtkMRMLTableNode").GetAttribute("BreastLesionSeg.Output") == "candidates"]


def test_candidates_are_hidden_segments_outside_the_table_and_can_be_promoted(
        ctx, strict_model, selftest_phantom, panel_values, tmp_path, poll_until_finished):
    nodes = [scene_io.node_from_volume(ctx.scene, vol, SERIES_NAMES[k])
             for k, vol in enumerate(selftest_phantom.exam.phases)]
    values = panel_values(model=STRICT_ID, user_model_folders=[str(strict_model.parent)], device="cpu",
                          pre_volume=nodes[0], post_volumes=nodes[1:])
    actions = PanelActions(SceneLogic(ctx, work_dir=tmp_path / "work", threads=2))
    actions.state(values)  # the strict card's threshold and minimum volume, as the panel does
    actions.apply(values)
    out = poll_until_finished(actions, values)
    result, selection = out.shown
    seg = result.segmentation
    metrics = result.metrics
    (candidate,) = metrics["candidates"]  # measured: one candidate, 931.5 mm3, confidence 0.25
    assert candidate["confidence"] < STRICT_THRESHOLD <= min(metrics["lesion_confidence"])
    names = segmentation_nodes.segment_names(seg, segmentation_nodes.segment_ids(seg))
    expected_name = f"Candidate 1 (confidence {candidate['confidence']:.2f})"
    assert names == ["Breast left", "Breast right", "Lesion 1", expected_name]
    assert result.candidate_segment_ids == ["candidate_1"] and result.lesion_segment_ids == ["lesion_1"]
    display = seg.GetDisplayNode()
    assert not display.GetSegmentVisibility("candidate_1") and display.GetSegmentVisibility("lesion_1")
    assert [r["Segment"] for r in tables.table_to_dicts(result.table)] == ["Lesion 1", "Total"]
    assert "1 low-confidence candidate(s) hidden" in out.status
    # the candidate table: one row per metrics.json candidate, beside the lesion table
    assert _candidate_rows(result.candidate_table) == [
        (expected_name, candidate["id"], pytest.approx(candidate["confidence"]), pytest.approx(candidate["volume_mm3"]),
         "no")]
    assert result.candidate_table.GetColumnUnitLabel("volume_mm3") == "mm3"
    sh = ctx.scene.GetSubjectHierarchyNode()
    assert sh.GetItemParent(sh.GetItemByDataNode(result.candidate_table)) == \
        sh.GetItemParent(sh.GetItemByDataNode(result.table))
    assert actions.current_result(values).candidate_table is result.candidate_table
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
    assert [r[-1] for r in _candidate_rows(result.candidate_table)] == ["no"]
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
    # its candidate row stays, under its new name, promoted
    assert _candidate_rows(result.candidate_table) == [
        ("Lesion 2", candidate["id"], pytest.approx(candidate["confidence"]), pytest.approx(candidate["volume_mm3"]),
         "yes")]
    assert len(_candidate_tables(ctx.scene)) == 1
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


@pytest.fixture
def candidate_run(tmp_path, synthetic_results):
    """Two ``segment`` output folders made with the core writers: ``with`` (lesion 1 reported; the right
    breast's box and a small left box as candidates 1 and 2) and ``without`` candidates (both lesions reported)."""
    vols, breast, lesions = synthetic_results
    g = lesions.geometry
    reported = np.where(lesions.array == 1, 1, 0).astype(np.uint8)
    cand = np.zeros(g.shape_zyx, np.uint8)
    cand[lesions.array == 2] = 1
    cand[2:4, 12:14, 19:21] = 2  # 8 voxels in the left breast, away from lesion 1
    vox = g.voxel_volume_mm3
    candidates = [{"id": 1, "confidence": 0.42, "volume_mm3": 18 * vox, "mean_probability": 0.6},
                  {"id": 2, "confidence": 0.07, "volume_mm3": 8 * vox, "mean_probability": 0.3}]
    folders = {}
    for kind, labels, cands in (("with", reported, candidates), ("without", np.asarray(lesions.array), [])):
        out = tmp_path / kind
        out.mkdir()
        lab = Volume(labels.astype(np.uint8), g, name="lesions")
        write_volume(lab, out / "lesions.nii.gz")
        write_volume(breast, out / "breast_mask.nii.gz")
        if cands:
            write_volume(Volume(cand, g, name="candidates"), out / "candidates.nii.gz")
        metrics = dict(lesion_metrics(DCEExam(vols), lab, breast), model={"id": "test", "demo": True})
        (out / "metrics.json").write_text(json.dumps(dict(metrics, candidates=cands)), encoding="utf-8")
        folders[kind] = out
    return folders, candidates


def test_candidate_table_is_replaced_on_reapply_and_follows_promotion(ctx, synthetic_results, candidate_run):
    vols, _, _ = synthetic_results
    folders, candidates = candidate_run
    sh = ctx.scene.GetSubjectHierarchyNode()
    study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient"), "MR breast")
    nodes = []
    for v in vols:
        nodes.append(scene_io.node_from_volume(ctx.scene, v, v.name))
        sh.CreateItem(study, nodes[-1])
    selection = phases.select_phases(ctx, INPUT_VOLUMES, nodes[0], nodes[1:])
    logic = SceneLogic(ctx)
    fresh = [(f"Candidate {c['id']} (confidence {c['confidence']:.2f})", c["id"], pytest.approx(c["confidence"]),
              pytest.approx(c["volume_mm3"]), "no") for c in candidates]

    first = logic.import_results(folders["with"], selection)
    table = first.candidate_table
    assert table.GetName() == f"{nodes[0].GetName()} lesions candidates"
    assert _candidate_rows(table) == fresh
    assert table.GetColumnUnitLabel("volume_mm3") == "mm3" and table.GetTable().GetNumberOfColumns() == 5
    assert sh.GetItemParent(sh.GetItemByDataNode(table)) == study == sh.GetItemParent(sh.GetItemByDataNode(first.table))
    assert logic.result_for_segmentation(first.segmentation).candidate_table is table

    # promotion by the logic (candidate 2) and by renaming in Segment Editor + Update metrics (candidate 1)
    promoted = logic.promote_candidate(first, selection, "candidate_2")
    assert promoted.candidate_table is table
    assert [(r[0], r[-1]) for r in _candidate_rows(table)] == [("Candidate 1 (confidence 0.42)", "no"),
                                                               ("Lesion 2", "yes")]
    first.segmentation.GetSegmentation().GetSegment("candidate_1").SetName("Lesion 3")
    updated = logic.update_metrics(logic.result_for_segmentation(first.segmentation), selection)
    assert [(r[0], r[-1]) for r in _candidate_rows(updated.candidate_table)] == [("Lesion 3", "yes"),
                                                                                 ("Lesion 2", "yes")]
    assert [r[2:4] for r in _candidate_rows(table)] == [r[2:4] for r in fresh]  # confidence and volume kept

    # a deleted candidate keeps its row and its last name, not promoted
    second = logic.import_results(folders["with"], selection)  # a separate result (no replace): its own table
    assert second.candidate_table is not table and len(_candidate_tables(ctx.scene)) == 2
    second.segmentation.GetSegmentation().RemoveSegment("candidate_2")
    logic.update_metrics(second, selection)
    assert _candidate_rows(second.candidate_table) == fresh

    # re-Apply replacing the first result (the panel passes the segmentation node): the same table, refilled
    again = logic.import_results(folders["with"], selection, replace=first.segmentation, confirm_replace=True)
    assert again.segmentation is first.segmentation and again.candidate_table is table
    assert _candidate_rows(table) == fresh and len(_candidate_tables(ctx.scene)) == 2

    # re-Apply with a run without candidates: the table goes away; a fresh import of such a run makes none
    n_tables = ctx.scene.GetNumberOfNodesByClass("vtkMRMLTableNode")
    none = logic.import_results(folders["without"], selection, replace=again, confirm_replace=True)
    assert none.candidate_table is None and ctx.scene.GetNodeByID(table.GetID()) is None
    assert ctx.scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == n_tables - 1
    assert logic.result_for_segmentation(first.segmentation).candidate_table is None
    assert logic.import_results(folders["without"], selection).candidate_table is None
    assert _candidate_tables(ctx.scene) == [second.candidate_table]
