"""Issue 15 bugs 5 and 6 on real MRML: a 4D-sequence run as the panel does it (the real CLI out of process),
and what Slicer's DICOM plugins store (series number on the subject-hierarchy item, terminology lists)."""
from __future__ import annotations


import numpy as np
import pytest
import slicer

from BreastLesionSegLib import phases, scene_io, segmentation_nodes as sn
from BreastLesionSegLib.logic import SceneLogic
from BreastLesionSegLib.panel_actions import PanelActions
from BreastLesionSegLib.settings import INPUT_SEQUENCE

TIMES_S = (0.0, 75.0, 150.0)


@pytest.fixture
def dce_sequence(ctx, tiny_phantom):
    """The phantom as a 4D sequence (index in s) in a study, the way a DICOM 4D series is loaded."""
    sh = ctx.scene.GetSubjectHierarchyNode()
    study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient"), "MR breast DCE")
    seq = ctx.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "DCE 4D")
    seq.SetIndexUnit("s")
    sh.CreateItem(study, seq)
    for t, vol in zip(TIMES_S, tiny_phantom.exam.phases):
        frame = scene_io.node_from_volume(ctx.scene, vol, f"t={t:.0f}s")
        seq.SetDataNodeAtValue(frame, f"{t:g}")
        ctx.scene.RemoveNode(frame)
    return seq, study


def test_sequence_mode_run_shows_the_proxy_keeps_times_and_files_under_the_study(
        ctx, dce_sequence, panel_values, tiny_model_dir, tmp_path, poll_until_finished):
    seq, study = dce_sequence
    values = panel_values(input_mode=INPUT_SEQUENCE, sequence=seq, model="slicer-test-tiny", device="cpu",
                          user_model_folders=[str(tiny_model_dir)], threshold=0.5, min_lesion_volume_mm3=0.0)
    actions = PanelActions(SceneLogic(ctx, work_dir=tmp_path / "work", threads=1))
    actions.apply(values)
    out = poll_until_finished(actions, values)
    result, selection = out.shown
    assert selection.acquisition_times_s == list(TIMES_S)
    # the slice views' background is a node of the main scene showing the pre-contrast frame
    background = phases.show_pre_contrast(ctx, selection)
    assert ctx.scene.GetNodeByID(background.GetID()) is background
    assert ctx.scene.GetNodeByID(selection.pre.GetID()) is not selection.pre  # the frame is in the sequence's scene
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(background), slicer.util.arrayFromVolume(selection.pre))
    # results go under the study of the sequence, not the subject-hierarchy root
    sh = ctx.scene.GetSubjectHierarchyNode()
    for node in (result.segmentation, result.table, result.plot.chart, result.plot.table):
        assert sh.GetItemParent(sh.GetItemByDataNode(node)) == study, node.GetName()
    # kinetic curves and the table use the acquisition times (s) right after Apply, as after Update metrics
    x = [result.plot.table.GetTable().GetValue(r, 0).ToDouble() for r in range(result.plot.table.GetNumberOfRows())]
    assert x == list(TIMES_S)
    for lesion in result.metrics.get("lesions", []):
        assert [p["time_s"] for p in lesion["time_intensity_curve"]] == list(TIMES_S)
    assert values.result.segmentation is result.segmentation and values.result.table is result.table
    assert list((tmp_path / "work").iterdir()) == []  # issue 14 row 15: run folder removed after the import
    updated, _ = actions.update_metrics(values)
    assert [updated.plot.table.GetTable().GetValue(r, 0).ToDouble() for r in range(3)] == list(TIMES_S)


def test_series_number_comes_from_the_subject_hierarchy_item(ctx, synthetic_results):
    """Slicer's DICOM plugins put DICOM.SeriesNumber on the series' subject-hierarchy item, not on the node;
    with names that carry no phase number, the series numbers order the post-contrast volumes."""
    vols, _, _ = synthetic_results
    sh = ctx.scene.GetSubjectHierarchyNode()
    study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), "P"), "S")
    attribute = slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMSeriesNumberAttributeName()
    nodes = {}
    for name, series, vol in (("ax dyn pre", "3", vols[0]), ("ax dyn A", "7", vols[1]), ("ax dyn B", "5", vols[2])):
        node = scene_io.node_from_volume(ctx.scene, vol, name)
        sh.SetItemAttribute(sh.CreateItem(study, node), attribute, series)
        nodes[name] = node
    assert nodes["ax dyn A"].GetAttribute(attribute) is None  # what logic.py read before: never set
    assert phases.series_number(ctx.scene, nodes["ax dyn A"]) == 7
    logic = SceneLogic(ctx)
    pre, posts = logic.assigned_nodes(logic.propose_inputs())
    assert pre is nodes["ax dyn pre"] and posts == [nodes["ax dyn B"], nodes["ax dyn A"]]  # series 5 before 7


def test_acquisition_time_from_the_dicom_database(ctx, synthetic_results):
    """DICOM.instanceUIDs (set by the scalar volume plugin) -> file -> (0008,0032) through the database's API."""
    vols, _, _ = synthetic_results
    node = scene_io.node_from_volume(ctx.scene, vols[0], "ax dyn pre")
    node.SetAttribute("DICOM.instanceUIDs", "1.2.3.4 1.2.3.5")

    class Database:  # ctkDICOMDatabase's two calls, on a two-file "database"
        files = {"1.2.3.4": "/dicom/a.dcm", "1.2.3.5": "/dicom/b.dcm"}
        tags = {("/dicom/a.dcm", phases.ACQUISITION_TIME_TAG): "101530.25"}

        def fileForInstance(self, uid):
            return self.files.get(uid, "")

        def fileValue(self, path, tag):
            return self.tags.get((path, tag), "")

    assert phases.dicom_acquisition_time_s(node, Database()) == pytest.approx(10 * 3600 + 15 * 60 + 30.25)
    assert phases.dicom_acquisition_time_s(node, None) is None
    assert phases.dicom_acquisition_time_s(scene_io.node_from_volume(ctx.scene, vols[1], "x"), Database()) is None


def test_breast_segments_reference_the_dicom_master_list(ctx, synthetic_results):
    """Breast (SCT 76752008) is an entry of Slicer's DICOM master list; the General Anatomy list has none."""
    from breastlesionseg.io.terminology import parse_terminology_string

    vols, breast, lesions = synthetic_results
    pre = scene_io.node_from_volume(ctx.scene, vols[0], "pre")
    seg = sn.create_segmentation_node(ctx, pre, "result")
    sn.write_results_to_segmentation(ctx, seg, pre, breast, lesions)
    for sid, side in (("breast_left", "Left"), ("breast_right", "Right")):
        entry = parse_terminology_string(seg.GetSegmentation().GetSegment(sid).GetTerminology())
        assert entry["contextName"] == "Segmentation category and type - DICOM master list"
        assert entry["type"][1] == "76752008" and entry["typeModifier"][2] == side
