"""SceneLogic on real MRML: import results, rerun without losing edits, update metrics after Segment Editor
edits, export to a training dataset, results found again after a scene save/reload, model choice by id."""
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
from BreastLesionSegLib import phases, scene_io, segmentation_nodes as sn, tables
from BreastLesionSegLib.logic import ReplaceNotConfirmedError, SceneLogic
from BreastLesionSegLib.mrml_context import create_standalone_context
from BreastLesionSegLib.settings import INPUT_SEQUENCE, INPUT_VOLUMES, SegmentationSettings


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


def _sel(ctx, nodes):
    """The panel's selection of separate volumes (pre first)."""
    return phases.select_phases(ctx, INPUT_VOLUMES, nodes[0], nodes[1:])


def _lesion_voxels(ctx, seg, sid, ref):
    return int(sn.export_segment_mask(ctx, seg, sid, ref).sum())


def _node_ids(scene):
    return [scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())]


def test_import_results_creates_nodes_in_the_study(ctx, exam_nodes, result_dir, synthetic_results):
    _, breast, lesions = synthetic_results
    logic = SceneLogic(ctx)
    res = logic.import_results(result_dir, _sel(ctx, exam_nodes))
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


def test_rerun_never_destroys_edits_and_replace_needs_confirmation(ctx, exam_nodes, result_dir, synthetic_results):
    _, _, lesions = synthetic_results
    logic = SceneLogic(ctx)
    pre = exam_nodes[0]
    first = logic.import_results(result_dir, _sel(ctx, exam_nodes))
    # radiologist's edit: lesion 1 erased on half of its slices
    edited = lesions.array == 1
    edited[6:] = False
    sn.set_segment_mask(ctx, first.segmentation, pre, sn.lesion_spec(1), edited)
    edited_count = int(edited.sum())
    second = logic.import_results(result_dir, _sel(ctx, exam_nodes))
    assert second.segmentation.GetID() != first.segmentation.GetID()
    assert _lesion_voxels(ctx, first.segmentation, "lesion_1", pre) == edited_count  # edit kept
    assert _lesion_voxels(ctx, second.segmentation, "lesion_1", pre) == 120
    before = _node_ids(ctx.scene)
    with pytest.raises(ReplaceNotConfirmedError):
        logic.import_results(result_dir, _sel(ctx, exam_nodes), replace=first)
    assert _node_ids(ctx.scene) == before
    assert _lesion_voxels(ctx, first.segmentation, "lesion_1", pre) == edited_count
    replaced = logic.import_results(result_dir, _sel(ctx, exam_nodes), replace=first, confirm_replace=True)
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
    logic = SceneLogic(ctx)
    pre = exam_nodes[0]
    res = logic.import_results(result_dir, _sel(ctx, exam_nodes))
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
    updated = logic.update_metrics(res, _sel(ctx, exam_nodes))
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
    again = logic.update_metrics(updated, _sel(ctx, exam_nodes))
    assert [r["Segment"] for r in tables.table_to_dicts(again.table)] == ["Lesion 1", "Total"]
    assert ctx.scene.GetNumberOfNodesByClass("vtkMRMLPlotSeriesNode") == n_series - 1


def test_add_to_training_set_refuses_to_overwrite(ctx, exam_nodes, result_dir, synthetic_results, tmp_path):
    vols, breast, lesions = synthetic_results
    logic = SceneLogic(ctx)
    res = logic.import_results(result_dir, _sel(ctx, exam_nodes))
    dataset = tmp_path / "dataset"
    folder = logic.add_to_training_set(dataset, "case_001", res.segmentation, _sel(ctx, exam_nodes),
                                       corrected_by="Dr. Test")
    assert folder == dataset / "cases" / "case_001" and folder.is_dir()
    manifest = json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))
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
        logic.add_to_training_set(dataset, "case_001", res.segmentation, _sel(ctx, exam_nodes))
    empty = sn.create_segmentation_node(ctx, exam_nodes[0], "empty")
    with pytest.raises(InputError, match="no non-empty lesion segment"):
        logic.add_to_training_set(dataset, "case_002", empty, _sel(ctx, exam_nodes))


def test_results_survive_mrb_save_and_reload(ctx, exam_nodes, result_dir, tmp_path):
    logic = SceneLogic(ctx)
    res = logic.import_results(result_dir, _sel(ctx, exam_nodes))
    mrb = tmp_path / "case.mrb"
    assert ctx.scene.WriteToMRB(str(mrb))
    assert any(n.endswith(".seg.nrrd") for n in zipfile.ZipFile(mrb).namelist())
    ctx2 = create_standalone_context(with_mrb_io=True, cache_dir=str(tmp_path / "cache"))
    assert ctx2.scene.ReadFromMRB(str(mrb))
    logic2 = SceneLogic(ctx2)
    pre, posts = logic2.assigned_nodes(logic2.propose_inputs())
    assert [pre.GetName()] + [p.GetName() for p in posts] == ["ax dyn pre", "ax dyn 1st pass", "ax dyn 2nd pass"]
    seg2 = ctx2.scene.GetFirstNodeByName(res.segmentation.GetName())
    res2 = logic2.result_for_segmentation(seg2)
    assert tables.table_to_dicts(res2.table)[0]["Segment"] == "Lesion 1"
    assert res2.plot.chart.GetNumberOfPlotSeriesNodes() == 2
    updated = logic2.update_metrics(res2, _sel(ctx2, [pre, *posts]))  # works on the reloaded scene
    assert tables.table_to_dicts(updated.table)[0]["voxel_count"] == 120


def test_settings_validation_names_the_field():
    with pytest.raises(InputError, match="threshold"):
        SegmentationSettings(threshold=1.5).validate()
    with pytest.raises(InputError, match="training_epochs"):
        SegmentationSettings(training_epochs=0).validate()
    with pytest.raises(InputError, match="modality"):
        SegmentationSettings(modality="CT").validate()


def test_missing_inputs_are_named(ctx, exam_nodes):
    logic = SceneLogic(ctx)
    with pytest.raises(InputError, match="no pre-contrast volume"):
        logic.select_phases(INPUT_VOLUMES, None, exam_nodes[1:])
    with pytest.raises(InputError, match="no post-contrast volume"):
        logic.select_phases(INPUT_VOLUMES, exam_nodes[0], [])
    with pytest.raises(InputError, match="no 4D DCE sequence"):
        logic.select_phases(INPUT_SEQUENCE, exam_nodes[0], exam_nodes[1:], None)


def test_result_for_segmentation_finds_its_own_table_or_makes_one(ctx, exam_nodes, result_dir, tmp_path):
    logic = SceneLogic(ctx)
    pre = exam_nodes[0]
    first = logic.import_results(result_dir, _sel(ctx, exam_nodes))
    second = logic.import_results(result_dir, _sel(ctx, exam_nodes))
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
    made = logic.update_metrics(bare, _sel(ctx, exam_nodes))
    assert [r["Segment"] for r in tables.table_to_dicts(made.table)] == ["Lesion 1", "Lesion 2", "Total"]
    assert logic.result_for_segmentation(seg).table is made.table
    with pytest.raises(InputError, match="no segmentation"):
        logic.result_for_segmentation(None)


def test_training_command_and_model_registration_by_id(ctx, tmp_path, tiny_model_dir):
    from BreastLesionSegLib.models import list_models
    from BreastLesionSegLib.logic import SLICER_TRAINING_CACHE_DTYPE
    from breastlesionseg.cli.main import build_parser
    from breastlesionseg.training.config import CACHE_DTYPES

    logic = SceneLogic(ctx, threads=2)
    settings = SegmentationSettings(model="slicer-test-tiny", user_model_folders=[str(tiny_model_dir)],
                                    dataset_folder=tmp_path / "ds", training_epochs=3, device="cpu", fine_tune=True)
    args = logic.training_arguments(tmp_path / "ds", tmp_path / "out", settings)
    assert args[:5] == ["train", "--data", str(tmp_path / "ds"), "--output", str(tmp_path / "out")]
    assert args[args.index("--epochs") + 1] == "3" and args[args.index("--progress") + 1] == "json"
    assert args[args.index("--init-from") + 1] == str(tiny_model_dir.resolve())
    assert args[args.index("--cache-dtype") + 1] == SLICER_TRAINING_CACHE_DTYPE == "float16"
    assert SLICER_TRAINING_CACHE_DTYPE in CACHE_DTYPES
    assert build_parser().parse_args(args).cache_dtype == "float16"  # the real CLI accepts every argument
    settings.fine_tune = False
    assert "--init-from" not in logic.training_arguments(tmp_path / "ds", tmp_path / "o", settings)
    with pytest.raises(InputError, match="has no case yet"):
        logic.start_training(settings)  # dataset folder missing: refused before starting anything
    values = SegmentationSettings()
    info = logic.register_model(values, tiny_model_dir)
    assert info.model_id == "slicer-test-tiny" and values.model == "slicer-test-tiny"  # by id, not this folder
    assert values.model_defaults_from == "slicer-test-tiny"
    assert str(tiny_model_dir.resolve().parent) in values.user_model_folders
    assert "slicer-test-tiny" in [m.model_id for m in list_models(values.user_model_folders)]
    assert logic.model_info(values).folder == tiny_model_dir.resolve()
    with pytest.raises(InputError, match="model_card.json"):
        logic.register_model(values, tmp_path)


def test_probability_and_heatmap_volumes_are_loaded_on_the_pre_grid(ctx, exam_nodes, result_dir, synthetic_results):
    from breastlesionseg.geometry import Volume

    _, _, lesions = synthetic_results
    prob = Volume((lesions.array > 0).astype(np.float32) * 0.9, lesions.geometry, name="probability")
    write_volume(prob, result_dir / "probability.nii.gz")
    logic = SceneLogic(ctx)
    res = logic.import_results(result_dir, _sel(ctx, exam_nodes))
    assert res.heatmap is None and res.probability is not None
    got = scene_io.volume_from_node(res.probability)
    assert got.geometry.same_grid(lesions.geometry)
    np.testing.assert_allclose(got.array, prob.array)
    assert logic.result_for_segmentation(res.segmentation).probability is res.probability  # found again
    # the maps are results, not inputs: auto-assignment never offers them as phases
    assert res.probability.GetID() not in [c.node_id for c in phases.volume_candidates(ctx.scene)]
    again = logic.import_results(result_dir, _sel(ctx, exam_nodes), replace=res, confirm_replace=True)
    assert again.probability is res.probability


def _calibrated_model(tiny_model_dir, folder, model_id="calibrated-tiny", threshold=0.37, min_volume_mm3=42.0):
    import shutil

    shutil.copytree(tiny_model_dir, folder)
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    card.update(model_id=model_id, threshold=threshold, min_lesion_volume_mm3=min_volume_mm3)
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


def test_choosing_a_model_takes_its_card_threshold_and_min_volume_once(ctx, tiny_model_dir, tmp_path):
    """Each model runs with the post-processing settings calibrated with it; the user's later changes stay."""
    folder = _calibrated_model(tiny_model_dir, tmp_path / "models" / "calibrated")
    logic = SceneLogic(ctx)
    values = SegmentationSettings(user_model_folders=[str(tmp_path / "models")], threshold=0.9,
                                  min_lesion_volume_mm3=1.0)
    values.model = "calibrated-tiny"  # what the model selector writes
    assert logic.sync_model_defaults(values)
    assert (values.threshold, values.min_lesion_volume_mm3) == (0.37, 42.0)
    info = logic.model_info(values)
    args = logic.segment_arguments([tmp_path / "pre.nii.gz", tmp_path / "post1.nii.gz"], tmp_path / "out",
                                   values, info)
    assert args[args.index("--threshold") + 1] == "0.37" and args[args.index("--min-lesion-mm3") + 1] == "42.0"
    assert args[args.index("--model") + 1] == str(folder.resolve())


def test_fresh_settings_start_from_the_default_model_card(monkeypatch, tmp_path, ctx):
    """A new scene's panel shows the default model's calibrated threshold and minimum volume, not 0.5 / 20."""
    from BreastLesionSegLib import models

    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")  # no user models shadow the shipped one
    card = json.loads((models.find_model(SegmentationSettings.model).folder / "model_card.json").read_text(encoding="utf-8"))
    assert (card["threshold"], card["min_lesion_volume_mm3"]) != (SegmentationSettings.threshold,
                                                                   SegmentationSettings.min_lesion_volume_mm3)
    values = SegmentationSettings()
    assert SceneLogic(ctx).sync_model_defaults(values)
    assert values.model == SegmentationSettings.model
    assert values.threshold == pytest.approx(card["threshold"])
    assert values.min_lesion_volume_mm3 == pytest.approx(card["min_lesion_volume_mm3"])


def test_without_the_default_model_the_defaults_stay(ctx, monkeypatch, tmp_path):
    from BreastLesionSegLib import models

    monkeypatch.setattr(models, "EXTENSION_MODELS_DIR", tmp_path / "no-models")
    monkeypatch.setattr(models, "core_model_search_path", lambda: [])
    values = SegmentationSettings()
    assert not SceneLogic(ctx).sync_model_defaults(values)
    assert values.threshold == SegmentationSettings.threshold
    assert values.min_lesion_volume_mm3 == SegmentationSettings.min_lesion_volume_mm3
