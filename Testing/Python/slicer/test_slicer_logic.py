"""BreastLesionSegLogic on real MRML: import results, rerun without losing edits, update metrics after
Segment Editor edits, export to a training dataset, parameter node + results saved with the scene."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import slicer
from vtk.util import numpy_support as nps

from breastlesionseg.errors import DatasetError, InputError
from breastlesionseg.exam import DCEExam
from breastlesionseg.io import read_label_volume, read_volume, write_volume
from breastlesionseg.io.seg_nrrd import write_seg_nrrd
from breastlesionseg.metrics import lesion_metrics
from BreastLesionSegLib import parameters as P
from BreastLesionSegLib import scene_io, segmentation_nodes as sn, tables
from BreastLesionSegLib.logic import BreastLesionSegLogic, ReplaceNotConfirmedError
from BreastLesionSegLib.mrml_context import create_standalone_context


@pytest.fixture
def exam_nodes(ctx, synthetic_results):
    vols, _, _ = synthetic_results
    sh = ctx.scene.GetSubjectHierarchyNode()
    study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient"), "MR breast")
    nodes = []
    for v in vols:
        node = scene_io.node_from_volume(ctx.scene, v, v.name)
        sh.CreateItem(study, node)
        nodes.append(node)
    return nodes


@pytest.fixture
def result_dir(tmp_path, synthetic_results):
    """The files `breastlesionseg segment` writes, made with the core writers from known labels."""
    vols, breast, lesions = synthetic_results
    out = tmp_path / "output"
    out.mkdir()
    write_volume(lesions, out / "lesions.nii.gz")
    write_volume(breast, out / "breast_mask.nii.gz")
    write_seg_nrrd(out / "segmentation.seg.nrrd", breast, lesions)
    metrics = lesion_metrics(DCEExam(vols), lesions, breast)
    (out / "metrics.json").write_text(json.dumps(dict(metrics, model={"id": "test", "demo": True})))
    return out


def _lesion_voxels(ctx, seg, sid, ref):
    return int(sn.export_segment_mask(ctx, seg, sid, ref).sum())


def _node_ids(scene):
    return [scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())]


def test_import_results_creates_nodes_in_the_study(ctx, exam_nodes, result_dir, synthetic_results):
    _, breast, lesions = synthetic_results
    logic = BreastLesionSegLogic(ctx)
    res = logic.import_results(result_dir, exam_nodes[0], exam_nodes[1:])
    labels = sn.labels_from_segmentation(ctx, res.segmentation, exam_nodes[0])
    np.testing.assert_array_equal(labels.lesion_labels.array, lesions.array)
    np.testing.assert_array_equal(labels.breast_mask.array, breast.array)
    rows = tables.table_to_dicts(res.table)
    assert [r["Segment"] for r in rows] == ["Lesion 1", "Lesion 2", "Total"]
    vox = lesions.geometry.voxel_volume_mm3
    assert rows[0]["volume_mm3"] == pytest.approx(120 * vox) and rows[1]["volume_mm3"] == pytest.approx(18 * vox)
    assert res.plot.chart.GetNumberOfPlotSeriesNodes() == 2
    assert res.plot.table.GetTable().GetNumberOfRows() == 3  # one point per phase
    # focus = centroid of lesion 1 in RAS
    kji = np.argwhere(lesions.array == 1).mean(axis=0)
    ras = lesions.geometry.ijk_to_ras_matrix() @ np.r_[kji[::-1], 1.0]
    np.testing.assert_allclose(res.focus_ras, ras[:3], atol=1e-6)
    sh = ctx.scene.GetSubjectHierarchyNode()
    study = sh.GetItemParent(sh.GetItemByDataNode(exam_nodes[0]))
    for node in (res.segmentation, res.table, res.plot.chart):
        assert sh.GetItemParent(sh.GetItemByDataNode(node)) == study
    pnode = logic.parameter_node
    assert P.node_reference(pnode, P.ROLE_SEGMENTATION) is res.segmentation
    assert P.node_reference(pnode, P.ROLE_TABLE) is res.table


def test_rerun_never_destroys_edits_and_replace_needs_confirmation(ctx, exam_nodes, result_dir, synthetic_results):
    _, _, lesions = synthetic_results
    logic = BreastLesionSegLogic(ctx)
    pre = exam_nodes[0]
    first = logic.import_results(result_dir, pre, exam_nodes[1:])
    # radiologist's edit: lesion 1 erased on half of its slices
    edited = lesions.array == 1
    edited[6:] = False
    sn.set_segment_mask(ctx, first.segmentation, pre, sn.lesion_spec(1), edited)
    edited_count = int(edited.sum())
    second = logic.import_results(result_dir, pre, exam_nodes[1:])
    assert second.segmentation.GetID() != first.segmentation.GetID()
    assert _lesion_voxels(ctx, first.segmentation, "lesion_1", pre) == edited_count  # edit kept
    assert _lesion_voxels(ctx, second.segmentation, "lesion_1", pre) == 120
    before = _node_ids(ctx.scene)
    with pytest.raises(ReplaceNotConfirmedError):
        logic.import_results(result_dir, pre, exam_nodes[1:], replace=first)
    assert _node_ids(ctx.scene) == before
    assert _lesion_voxels(ctx, first.segmentation, "lesion_1", pre) == edited_count
    replaced = logic.import_results(result_dir, pre, exam_nodes[1:], replace=first, confirm_replace=True)
    assert replaced.segmentation is first.segmentation and replaced.table is first.table
    assert _lesion_voxels(ctx, first.segmentation, "lesion_1", pre) == 120
    assert ctx.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 2


def _segment_editor(ctx, seg, volume):
    editor_node = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
    ed = slicer.vtkSlicerSegmentEditorLogic()
    ed.SetMRMLScene(ctx.scene)
    ed.SetMRMLApplicationLogic(ctx.app_logic)
    ed.SetSegmentEditorNode(editor_node)
    ed.SetSegmentationNode(seg)
    ed.SetSourceVolumeNode(volume)
    ed.UpdateReferenceGeometryImage()
    return ed


def test_update_metrics_after_segment_editor_erase(ctx, exam_nodes, result_dir, synthetic_results):
    _, _, lesions = synthetic_results
    logic = BreastLesionSegLogic(ctx)
    pre = exam_nodes[0]
    res = logic.import_results(result_dir, pre, exam_nodes[1:])
    if not hasattr(slicer, "vtkSlicerSegmentEditorLogic"):
        pytest.skip("vtkSlicerSegmentEditorLogic needs Slicer >= 5.9")
    ed = _segment_editor(ctx, res.segmentation, pre)
    ed.SetCurrentSegmentID("lesion_1")
    ed.ResetModifierLabelmapToDefault()
    mod = ed.GetModifierLabelmap()
    m = nps.vtk_to_numpy(mod.GetPointData().GetScalars()).reshape(lesions.array.shape)
    m[:] = 0
    m[6:] = 1  # erase lesion 1 on slices k >= 6: it spans k = 3..8, so exactly half (60 of 120 voxels) goes
    ed.ModifySegmentByLabelmap(res.segmentation, "lesion_1", mod, ed.ModificationModeRemove, True, False)
    updated = logic.update_metrics(res, pre, exam_nodes[1:])
    rows = tables.table_to_dicts(updated.table)
    vox = lesions.geometry.voxel_volume_mm3
    assert updated.table is res.table  # refreshed in place
    assert rows[0]["Segment"] == "Lesion 1" and rows[0]["volume_mm3"] == pytest.approx(60 * vox)
    assert rows[0]["voxel_count"] == 60
    assert rows[1]["volume_mm3"] == pytest.approx(18 * vox)
    assert rows[2]["volume_mm3"] == pytest.approx(78 * vox)
    assert updated.plot.chart.GetNumberOfPlotSeriesNodes() == 2
    # the radiologist deletes lesion 2 -> one row left, old series nodes removed from the scene
    res.segmentation.GetSegmentation().RemoveSegment("lesion_2")
    n_series = ctx.scene.GetNumberOfNodesByClass("vtkMRMLPlotSeriesNode")
    again = logic.update_metrics(updated, pre, exam_nodes[1:])
    assert [r["Segment"] for r in tables.table_to_dicts(again.table)] == ["Lesion 1", "Total"]
    assert ctx.scene.GetNumberOfNodesByClass("vtkMRMLPlotSeriesNode") == n_series - 1


def test_add_to_training_set_refuses_to_overwrite(ctx, exam_nodes, result_dir, synthetic_results, tmp_path):
    vols, breast, lesions = synthetic_results
    logic = BreastLesionSegLogic(ctx)
    res = logic.import_results(result_dir, exam_nodes[0], exam_nodes[1:])
    dataset = tmp_path / "dataset"
    folder = logic.add_to_training_set(dataset, "case_001", res.segmentation, exam_nodes[0], exam_nodes[1:],
                                       corrected_by="Dr. Test")
    assert folder == dataset / "cases" / "case_001" and folder.is_dir()
    manifest = json.loads((dataset / "dataset.json").read_text())
    assert "case_001" in json.dumps(manifest) and "Dr. Test" in json.dumps(manifest)
    saved = sorted(p.name for p in folder.iterdir())
    lesion_file = [p for p in folder.iterdir() if "lesion" in p.name][0]
    back = read_label_volume(lesion_file)
    assert back.geometry.same_grid(lesions.geometry)
    np.testing.assert_array_equal(back.array > 0, lesions.array > 0)
    phase_files = {p.name.split(".")[0]: p for p in folder.iterdir() if p.name.startswith(("pre", "post"))}
    assert sorted(phase_files) == ["post1", "post2", "pre"], saved
    for name, vol in zip(("pre", "post1", "post2"), vols):
        np.testing.assert_allclose(read_volume(phase_files[name]).array, vol.array, rtol=1e-6)
    with pytest.raises(DatasetError):
        logic.add_to_training_set(dataset, "case_001", res.segmentation, exam_nodes[0], exam_nodes[1:])
    empty = sn.create_segmentation_node(ctx, exam_nodes[0], "empty")
    with pytest.raises(InputError, match="no non-empty lesion segment"):
        logic.add_to_training_set(dataset, "case_002", empty, exam_nodes[0], exam_nodes[1:])


def test_parameter_node_and_results_survive_mrb_save_and_reload(ctx, exam_nodes, result_dir, tmp_path):
    logic = BreastLesionSegLogic(ctx)
    settings = P.SegmentationSettings(device="cpu", threshold=0.35, min_lesion_volume_mm3=42.5, breast_masking=False,
                                      user_model_dirs=[str(tmp_path / "m1"), str(tmp_path / "m2")],
                                      dataset_dir=str(tmp_path / "ds"), training_epochs=7, corrected_by="Dr. A")
    P.save_settings(logic.parameter_node, settings)
    logic.propose_inputs()
    res = logic.import_results(result_dir, exam_nodes[0], exam_nodes[1:])
    mrb = tmp_path / "case.mrb"
    assert ctx.scene.WriteToMRB(str(mrb))
    assert any(n.endswith(".seg.nrrd") for n in zipfile.ZipFile(mrb).namelist())
    ctx2 = create_standalone_context(with_mrb_io=True, cache_dir=str(tmp_path / "cache"))
    assert ctx2.scene.ReadFromMRB(str(mrb))
    logic2 = BreastLesionSegLogic(ctx2)
    assert logic2.settings() == settings
    pre, posts, _ = logic2.phase_nodes()
    assert [pre.GetName()] + [p.GetName() for p in posts] == ["ax dyn pre", "ax dyn 1st pass", "ax dyn 2nd pass"]
    res2 = logic2.current_result()
    assert res2.segmentation.GetName() == res.segmentation.GetName()
    assert tables.table_to_dicts(res2.table)[0]["Segment"] == "Lesion 1"
    assert res2.plot.chart.GetNumberOfPlotSeriesNodes() == 2
    updated = logic2.update_metrics(res2, pre, posts)  # works on the reloaded scene
    assert tables.table_to_dicts(updated.table)[0]["voxel_count"] == 120


def test_settings_validation_and_bad_stored_values(ctx):
    pnode = P.get_parameter_node(ctx.scene)
    assert P.get_parameter_node(ctx.scene) is pnode
    with pytest.raises(InputError, match="threshold"):
        P.save_settings(pnode, P.SegmentationSettings(threshold=1.5))
    pnode.SetParameter("TrainingEpochs", "many")
    with pytest.raises(InputError, match="TrainingEpochs='many'"):
        P.load_settings(pnode)
    pnode.SetParameter("TrainingEpochs", "3")
    assert P.load_settings(pnode).training_epochs == 3


def test_phase_nodes_from_sequence_and_missing_inputs(ctx, exam_nodes, result_dir, synthetic_results):
    logic = BreastLesionSegLogic(ctx)
    with pytest.raises(InputError, match="no pre-contrast volume"):
        logic.phase_nodes()
    seq = ctx.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "DCE")
    for t, node in zip((0, 60, 120), exam_nodes):
        seq.SetDataNodeAtValue(node, str(t))
    settings = P.SegmentationSettings(input_mode="sequence")
    P.save_settings(logic.parameter_node, settings)
    with pytest.raises(InputError, match="no 4D DCE sequence"):
        logic.phase_nodes()
    P.set_node_reference(logic.parameter_node, P.ROLE_SEQUENCE, seq)
    pre, posts, times = logic.phase_nodes()
    assert pre.GetName() == "ax dyn pre" and len(posts) == 2 and times == [0.0, 60.0, 120.0]  # default unit: s
    seq.SetIndexUnit("frame")
    assert logic.phase_nodes()[2] is None
    # the frames live in the sequence's own scene: results and metrics work on them too
    assert ctx.scene.GetNodeByID(pre.GetID()) is not pre
    res = logic.import_results(result_dir, pre, posts)
    back = sn.labels_from_segmentation(ctx, res.segmentation, pre)
    np.testing.assert_array_equal(back.lesion_labels.array, synthetic_results[2].array)
    assert tables.table_to_dicts(logic.update_metrics(res, pre, posts).table)[0]["voxel_count"] == 120


def test_result_for_segmentation_finds_its_own_table_or_makes_one(ctx, exam_nodes, result_dir, tmp_path):
    logic = BreastLesionSegLogic(ctx)
    pre = exam_nodes[0]
    first = logic.import_results(result_dir, pre, exam_nodes[1:])
    second = logic.import_results(result_dir, pre, exam_nodes[1:])
    found = logic.result_for_segmentation(first.segmentation)
    assert found.table is first.table and found.plot.chart is first.plot.chart
    assert logic.result_for_segmentation(second.segmentation).table is second.table
    assert logic.focus_of_largest_lesion(found) == pytest.approx(first.focus_ras)
    # a segmentation loaded from a .seg.nrrd (made elsewhere) has no table yet: update_metrics makes one
    seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "from file")
    st = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    st.SetFileName(str(result_dir / "segmentation.seg.nrrd"))
    assert st.ReadData(seg)
    bare = logic.result_for_segmentation(seg)
    assert bare.table is None and bare.plot is None
    made = logic.update_metrics(bare, pre, exam_nodes[1:])
    assert [r["Segment"] for r in tables.table_to_dicts(made.table)] == ["Lesion 1", "Lesion 2", "Total"]
    assert logic.result_for_segmentation(seg).table is made.table
    with pytest.raises(InputError, match="no segmentation"):
        logic.result_for_segmentation(None)


def test_training_command_and_model_registration(ctx, tmp_path, tiny_model_dir):
    from BreastLesionSegLib.models import list_models

    logic = BreastLesionSegLogic(ctx, threads=2)
    settings = P.SegmentationSettings(model=str(tiny_model_dir), dataset_dir=str(tmp_path / "ds"), training_epochs=3,
                                      device="cpu", fine_tune=True)
    args = logic.training_arguments(tmp_path / "ds", tmp_path / "out", settings)
    assert args[:5] == ["train", "--data", str(tmp_path / "ds"), "--output", str(tmp_path / "out")]
    assert args[args.index("--epochs") + 1] == "3" and args[args.index("--progress") + 1] == "json"
    assert args[args.index("--init-from") + 1] == str(tiny_model_dir.resolve())
    assert "--init-from" not in logic.training_arguments(tmp_path / "ds", tmp_path / "o", P.SegmentationSettings(
        fine_tune=False))
    with pytest.raises(InputError, match="does not exist"):
        logic.start_training(settings)  # dataset folder missing: refused before starting anything
    P.save_settings(logic.parameter_node, P.SegmentationSettings())
    info = logic.register_model(tiny_model_dir)
    saved = logic.settings()
    assert info.model_id == "slicer-test-tiny" and saved.model == str(tiny_model_dir.resolve())
    assert str(tiny_model_dir.resolve().parent) in saved.user_model_dirs
    assert "slicer-test-tiny" in [m.model_id for m in list_models(saved.user_model_dirs)]
    with pytest.raises(InputError, match="model_card.json"):
        logic.register_model(tmp_path)


def test_probability_and_heatmap_volumes_are_loaded_on_the_pre_grid(ctx, exam_nodes, result_dir, synthetic_results):
    from breastlesionseg.geometry import Volume

    _, _, lesions = synthetic_results
    prob = Volume((lesions.array > 0).astype(np.float32) * 0.9, lesions.geometry, name="probability")
    write_volume(prob, result_dir / "probability.nii.gz")
    logic = BreastLesionSegLogic(ctx)
    res = logic.import_results(result_dir, exam_nodes[0], exam_nodes[1:])
    assert res.heatmap is None and res.probability is not None
    got = scene_io.volume_from_node(res.probability)
    assert got.geometry.same_grid(lesions.geometry)
    np.testing.assert_allclose(got.array, prob.array)
    assert P.node_reference(logic.parameter_node, P.ROLE_PROBABILITY) is res.probability
    # the maps are results, not inputs: auto-assignment never offers them as phases
    assert res.probability.GetID() not in [c.node_id for c in logic.volume_candidates()]
    again = logic.import_results(result_dir, exam_nodes[0], exam_nodes[1:], replace=res, confirm_replace=True)
    assert again.probability is res.probability


def test_selecting_a_model_takes_its_card_threshold_and_min_volume(ctx, tiny_model_dir, tmp_path):
    """Each model runs with the post-processing settings calibrated with it (its model card)."""
    import shutil

    folder = tmp_path / "calibrated"
    shutil.copytree(tiny_model_dir, folder)
    card = json.loads((folder / "model_card.json").read_text())
    card.update(model_id="calibrated-tiny", threshold=0.37, min_lesion_volume_mm3=42.0)
    (folder / "model_card.json").write_text(json.dumps(card))
    logic = BreastLesionSegLogic(ctx)
    P.save_settings(logic.parameter_node, P.SegmentationSettings(threshold=0.9, min_lesion_volume_mm3=1.0))
    info = logic.select_model(folder)
    saved = logic.settings()
    assert info.threshold == 0.37 and info.min_lesion_volume_mm3 == 42.0
    assert saved.model == str(folder.resolve()) and saved.threshold == 0.37 and saved.min_lesion_volume_mm3 == 42.0
    args = logic.segment_arguments([tmp_path / "pre.nii.gz", tmp_path / "post1.nii.gz"], tmp_path / "out", saved, info)
    assert args[args.index("--threshold") + 1] == "0.37" and args[args.index("--min-lesion-mm3") + 1] == "42.0"
    with pytest.raises(InputError, match="model_card.json"):
        logic.select_model(tmp_path / "nothing-here")


def test_fresh_parameter_node_starts_from_the_default_model_card(ctx, monkeypatch, tmp_path):
    """A new scene's panel shows the default model's calibrated threshold and minimum volume, not 0.5 / 20."""
    from BreastLesionSegLib import models

    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")  # no user models shadow the shipped one
    card = json.loads((models.find_model(P.SegmentationSettings.model).folder / "model_card.json").read_text())
    assert (card["threshold"], card["min_lesion_volume_mm3"]) != (P.SegmentationSettings.threshold,
                                                                   P.SegmentationSettings.min_lesion_volume_mm3)
    logic = BreastLesionSegLogic(ctx)
    settings = logic.settings()
    assert settings.model == P.SegmentationSettings.model
    assert settings.threshold == pytest.approx(card["threshold"])
    assert settings.min_lesion_volume_mm3 == pytest.approx(card["min_lesion_volume_mm3"])
    # settings the user changed afterwards are kept: only a fresh node is initialised
    settings.threshold = 0.61
    P.save_settings(logic.parameter_node, settings)
    assert BreastLesionSegLogic(ctx).settings().threshold == pytest.approx(0.61)


def test_fresh_parameter_node_without_the_default_model_keeps_dataclass_defaults(ctx, monkeypatch, tmp_path):
    from BreastLesionSegLib import models

    monkeypatch.setattr(models, "EXTENSION_MODELS_DIR", tmp_path / "no-models")
    monkeypatch.setattr(models, "core_model_search_path", lambda: [])
    settings = BreastLesionSegLogic(ctx).settings()
    assert settings.threshold == P.SegmentationSettings.threshold
    assert settings.min_lesion_volume_mm3 == P.SegmentationSettings.min_lesion_volume_mm3
