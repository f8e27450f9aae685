"""Issue 15, the panel's bugs, through the code the panel runs (PanelActions, ParameterNodeBinding,
panel_state) on real MRML: training folders, the first threshold change, the model stored by id across a
saved scene, following the parameter node after leaving and re-entering the module."""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import vtk

from breastlesionseg.errors import InputError
from BreastLesionSegLib import panel_state, scene_io, segmentation_nodes as sn
from BreastLesionSegLib.background_runs import BackgroundRuns, run_outcome
from BreastLesionSegLib.logic import SceneLogic
from BreastLesionSegLib.mrml_context import create_standalone_context
from BreastLesionSegLib.panel_actions import PanelActions
from BreastLesionSegLib.panel_binding import ParameterNodeBinding
from BreastLesionSegLib.process import OutOfProcessRun
from BreastLesionSegLib.settings import (
    INPUT_SEQUENCE,
    INPUT_VOLUMES,
    MODALITY_DCE_MRI,
    MODALITY_ULTRASOUND,
    SegmentationSettings,
    chosen_folder,
    dataset_is_ready,
    default_dataset_folder,
    settings_from,
)


@pytest.fixture
def loaded(ctx, synthetic_results):
    vols, breast, lesions = synthetic_results
    nodes = [scene_io.node_from_volume(ctx.scene, v, v.name) for v in vols]
    seg = sn.create_segmentation_node(ctx, nodes[0], "corrected")
    sn.write_results_to_segmentation(ctx, seg, nodes[0], breast, lesions)
    return nodes, seg


def _calibrated_model(tiny_model_dir, folder, model_id="calibrated-tiny", threshold=0.37, min_volume_mm3=42.0):
    shutil.copytree(tiny_model_dir, folder)
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    card.update(model_id=model_id, threshold=threshold, min_lesion_volume_mm3=min_volume_mm3)
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


# -- bug 1: training folders ---------------------------------------------------------------------
def test_unset_training_folder_never_means_slicers_working_directory(ctx, loaded, panel_values, tmp_path, monkeypatch):
    """ctkDirectoryButton.directory reads "." when unset: Add to training set must refuse, not write into the cwd."""
    nodes, seg = loaded
    cwd = tmp_path / "slicer-started-here"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    values = panel_values(pre_volume=nodes[0], post_volumes=nodes[1:])
    values.result.segmentation = seg
    actions = PanelActions(SceneLogic(ctx))
    for unset in (Path(""), Path("."), "", "relative/folder"):
        values.dataset_folder = unset
        with pytest.raises(InputError, match="training dataset folder"):
            actions.add_to_training_set(values, "case_1")
    assert list(cwd.iterdir()) == []  # nothing written where Slicer was started
    values.dataset_folder = tmp_path / "chosen"
    folder = actions.add_to_training_set(values, "case_1")
    assert folder == tmp_path / "chosen" / "cases" / "case_1" and folder.is_dir()


def test_default_training_folders_are_under_the_users_home():
    values = SegmentationSettings()
    for folder in (values.dataset_folder, values.training_output_folder):
        assert folder.is_absolute() and Path.home() in folder.parents
    assert values.dataset_folder == default_dataset_folder()
    assert chosen_folder(values.dataset_folder, "x") == values.dataset_folder


def test_train_is_enabled_only_with_a_chosen_dataset_that_has_a_case(ctx, loaded, panel_values, tmp_path):
    nodes, seg = loaded
    values = panel_values(pre_volume=nodes[0], post_volumes=nodes[1:], dataset_folder=Path("."))
    values.result.segmentation = seg
    actions = PanelActions(SceneLogic(ctx))
    assert not actions.state(values)[0].train
    with pytest.raises(InputError, match="training dataset folder"):
        actions.train(values)
    values.dataset_folder = tmp_path / "dataset"
    assert not actions.state(values)[0].train and not dataset_is_ready(values.dataset_folder)  # no case yet
    actions.add_to_training_set(values, "case_1")
    assert actions.state(values)[0].train and dataset_is_ready(values.dataset_folder)


# -- bug 2: the first threshold change; the model by id in a saved scene ---------------------------
def test_the_first_threshold_and_min_volume_change_is_kept(ctx, panel_values, tiny_model_dir, tmp_path):
    """The panel refreshes on every parameter change (state()); only a newly chosen model resets the values."""
    _calibrated_model(tiny_model_dir, tmp_path / "models" / "calibrated")
    _calibrated_model(tiny_model_dir, tmp_path / "models" / "other", "other-tiny", 0.61, 5.0)
    values = panel_values(model="calibrated-tiny", user_model_folders=[str(tmp_path / "models")])
    actions = PanelActions(SceneLogic(ctx))
    state, entries, index = actions.state(values)  # a new parameter node: the card's calibrated values
    assert (values.threshold, values.min_lesion_volume_mm3) == (0.37, 42.0)
    assert entries[index][1] == "calibrated-tiny" and state.apply and "calibrated-tiny" in state.model_card
    values.threshold, values.min_lesion_volume_mm3 = 0.25, 7.5  # the user's first change
    actions.state(values)
    assert (values.threshold, values.min_lesion_volume_mm3) == (0.25, 7.5)
    assert values.model == "calibrated-tiny"  # an id, never this computer's folder
    values.model = "other-tiny"  # the user picks another model: its card's values
    actions.state(values)
    assert (values.model, values.threshold, values.min_lesion_volume_mm3) == ("other-tiny", 0.61, 5.0)
    assert settings_from(values).model == "other-tiny"


def test_saved_scene_names_the_model_by_id_and_finds_it_elsewhere(ctx, tiny_model_dir, tmp_path, monkeypatch):
    """The parameter node's model value is the id (the wrapper stores a str parameter as it is): a scene saved on
    one computer finds the model in another install location."""
    here = _calibrated_model(tiny_model_dir, tmp_path / "install-a" / "calibrated")
    values = SegmentationSettings(user_model_folders=[str(here.parent)], model="calibrated-tiny")
    SceneLogic(ctx).sync_model_defaults(values)
    node = ctx.scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "BreastLesionSeg")
    node.SetParameter("model", values.model)
    mrb = tmp_path / "scene.mrb"
    assert ctx.scene.WriteToMRB(str(mrb))
    shutil.move(str(here.parent), str(tmp_path / "install-b"))  # an update / another computer
    monkeypatch.setenv("BREASTLESIONSEG_MODELS", str(tmp_path / "install-b"))
    ctx2 = create_standalone_context(with_mrb_io=True, cache_dir=str(tmp_path / "cache"))
    assert ctx2.scene.ReadFromMRB(str(mrb))
    stored = ctx2.scene.GetFirstNodeByName("BreastLesionSeg").GetParameter("model")
    assert stored == "calibrated-tiny" and os.sep not in stored
    info = SceneLogic(ctx2).model_info(SegmentationSettings(model=stored))
    assert info.folder == (tmp_path / "install-b" / "calibrated").resolve()


def test_parameter_node_wrapper_round_trip_in_slicer():
    """With Slicer's own wrapper (the application; not in the slicer-core wheel): values survive the node."""
    pytest.importorskip("slicer.parameterNodeWrapper", reason="slicer.parameterNodeWrapper ships with the Slicer "
                        "application only, not with the slicer-core wheel")
    import slicer
    from BreastLesionSegLib.parameter_node import BreastLesionSegParameterNode

    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    values = BreastLesionSegParameterNode(node)
    values.threshold, values.model, values.dataset_folder = 0.3, "calibrated-tiny", Path("/data/set")
    again = BreastLesionSegParameterNode(node)
    assert (again.threshold, again.model, again.dataset_folder) == (0.3, "calibrated-tiny", Path("/data/set"))
    assert settings_from(again).threshold == 0.3


# -- bug 3: exit / enter ---------------------------------------------------------------------------
def test_panel_follows_the_parameter_node_again_after_exit_and_enter(ctx):
    node = ctx.scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "BreastLesionSeg")
    gui_updates = []

    def connect(n):  # what the widget does: connectGui + an observer that refreshes the panel
        return n.AddObserver(vtk.vtkCommand.ModifiedEvent, lambda *a: gui_updates.append(n.GetParameter("threshold")))

    binding = ParameterNodeBinding(connect, lambda n, tag: n.RemoveObserver(tag))
    assert binding.follow(node)  # enter
    node.SetParameter("threshold", "0.3")
    binding.release()  # exit: another module is shown
    node.SetParameter("threshold", "0.4")  # changed elsewhere while the panel is hidden
    assert gui_updates == ["0.3"] and not binding.connected
    assert binding.follow(node)  # enter again: the same node object must be followed again
    node.SetParameter("threshold", "0.5")
    assert gui_updates == ["0.3", "0.5"]
    assert not binding.follow(node)  # entering twice does not observe twice
    node.SetParameter("threshold", "0.6")
    assert gui_updates == ["0.3", "0.5", "0.6"]
    binding.forget()  # scene closing
    other = ctx.scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "BreastLesionSeg new")
    assert binding.follow(other) and binding.node is other
    node.SetParameter("threshold", "0.7")
    assert gui_updates == ["0.3", "0.5", "0.6"]


# -- what the panel shows ------------------------------------------------------------------------
def test_panel_state_by_modality_and_runs(tmp_path):
    dce = panel_state.panel_state(MODALITY_DCE_MRI, INPUT_SEQUENCE, True, True, "", False, False)
    assert dce.show_dce_inputs and dce.use_sequence and not dce.show_image_2d and dce.apply and dce.result_actions
    assert dce.enabled()["sequenceSelector"] and not dce.enabled()["preVolumeSelector"]
    busy = panel_state.panel_state(MODALITY_DCE_MRI, INPUT_VOLUMES, True, True, "", True, True)
    assert not busy.apply and busy.cancel and not busy.result_actions and busy.cancel_training and not busy.train
    missing = panel_state.panel_state(MODALITY_DCE_MRI, INPUT_VOLUMES, False, False, "", False, False)
    assert not missing.apply and "not installed" in missing.status and missing.model_card == missing.status
    us = panel_state.panel_state(MODALITY_ULTRASOUND, INPUT_VOLUMES, True, False, "", False, False, "not here")
    assert us.show_image_2d and not us.show_dce_inputs and not us.apply and us.status == "not here"
    assert set(us.visible()) == (set(panel_state.DCE_INPUT_WIDGETS) | set(panel_state.DCE_OPTION_WIDGETS)
                                 | set(panel_state.IMAGE_2D_WIDGETS))
    # the threshold / minimum volume / breast masking options do nothing in the 2D modes: hidden there
    assert not any(us.visible()[n] for n in panel_state.DCE_OPTION_WIDGETS)
    assert all(dce.visible()[n] for n in panel_state.DCE_OPTION_WIDGETS)


def test_post_list_keeps_the_chosen_order_and_hides_the_pre_volume():
    from BreastLesionSegLib.input_assignment import VolumeCandidate

    cands = [VolumeCandidate(f"id{k}", name) for k, name in enumerate(("pre", "p1", "p2", "p3", "t2"))]
    rows = panel_state.post_list_order(cands, ["id3", "id1"], "id0")
    assert rows == [("id3", "p3", True), ("id1", "p1", True), ("id2", "p2", False), ("id4", "t2", False)]


def test_background_runs_report_progress_and_the_finished_run(tmp_path):
    events = ['{"event": "progress", "fraction": 0.5, "stage": "s", "message": "half"}', '{"event": "done", "output": "o"}']
    code = "import sys\n" + "".join(f"print({e!r}, flush=True)\n" for e in events) + "print('log line', file=sys.stderr)\n"
    runs = BackgroundRuns()

    class Job:  # the panel's job: a run and what it segments
        run = OutOfProcessRun([sys.executable, "-c", code], run_dir=tmp_path / "run", name="segmentation").start()

    runs.start_segmentation(Job)
    with pytest.raises(InputError, match="already running"):
        runs.start_segmentation(Job)
    lines, done = [], None
    for _ in range(1200):  # the widget's timer: poll until the run ends (bounded, about a minute at most)
        report = runs.poll()
        lines += report.log_lines
        done = report.segmentation_done
        if done is not None:
            break
        time.sleep(0.05)
    assert done is Job and not runs.busy
    assert "s: half" in lines and "log line" in lines and "done: o" in lines
    assert run_outcome(Job.run).startswith("Segmentation finished")
