"""Apply out of process with the real `breastlesionseg segment` CLI: results -> nodes and the run folder
removed after the import; Cancel leaves the scene unchanged (same nodes, same ids) and no files behind."""
from __future__ import annotations

import time

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from BreastLesionSegLib import scene_io, segmentation_nodes as sn, tables
from BreastLesionSegLib.logic import SceneLogic
from BreastLesionSegLib.settings import INPUT_VOLUMES, SegmentationSettings

NAMES = ("ax dyn pre", "ax dyn 1st pass", "ax dyn 2nd pass")


@pytest.fixture
def loaded(ctx, tiny_phantom):
    return [scene_io.node_from_volume(ctx.scene, v, NAMES[k]) for k, v in enumerate(tiny_phantom.exam.phases)]


def _settings(model_dir, **kw):
    return SegmentationSettings(model="slicer-test-tiny", user_model_folders=[str(model_dir)], device="cpu", **kw)


def _scene_state(scene):
    return [(scene.GetNthNode(i).GetID(), scene.GetNthNode(i).GetName()) for i in range(scene.GetNumberOfNodes())]


def test_apply_runs_the_cli_and_imports_a_new_result(ctx, loaded, tiny_model_dir, tiny_phantom, tmp_path):
    logic = SceneLogic(ctx, work_dir=tmp_path / "work", threads=1)
    pre, posts = logic.assigned_nodes(logic.propose_inputs())
    assert [pre] + posts == loaded
    settings = _settings(tiny_model_dir, threshold=0.5, min_lesion_volume_mm3=0.0)
    job = logic.start_segmentation(logic.select_phases(INPUT_VOLUMES, pre, posts), settings)
    assert job.run.command[1:3] == ["-m", "breastlesionseg.cli.main"] and "--progress" in job.run.command
    assert sorted(p.name for p in (job.run_dir / "inputs").iterdir()) == ["phase_00.nrrd", "phase_01.nrrd",
                                                                          "phase_02.nrrd"]
    assert job.run.wait(timeout_s=300) == "succeeded", "\n".join(job.run.log_lines[-20:])
    stages = [e.data.get("stage") for e in job.run.events if e.event == "progress"]
    assert len(stages) >= 3 and job.run.events[-1].event == "done"
    from breastlesionseg.io import read_label_volume

    written = read_label_volume(job.output_dir / "breast_mask.nii.gz")
    res = logic.finish_segmentation(job)
    # issue 14 row 15: the run folder (uncompressed copies of every phase) is gone after a successful import
    assert not job.run_dir.exists() and list((tmp_path / "work").iterdir()) == []
    names = sn.segment_names(res.segmentation, sn.segment_ids(res.segmentation))
    assert names[:2] == ["Breast left", "Breast right"]
    assert names[2:] == [f"Lesion {k}" for k in range(1, len(names) - 1)]
    # what is in the node equals what the CLI wrote, on the pre grid
    back = sn.labels_from_segmentation(ctx, res.segmentation, pre)
    np.testing.assert_array_equal(back.breast_mask.array, written.array)
    assert back.breast_mask.geometry.same_grid(scene_io.volume_from_node(pre).geometry)
    # the breast region (classical segmenter, no learned weights involved) matches the phantom's truth
    truth = tiny_phantom.breast_mask.array > 0
    found = back.breast_mask.array > 0
    dice = 2 * np.logical_and(truth, found).sum() / (truth.sum() + found.sum())
    print(f"breast Dice vs phantom truth: {dice:.3f}")
    assert dice > 0.6
    assert len(tables.table_to_dicts(res.table)) == (len(names) - 2) + (1 if len(names) > 2 else 0)
    from BreastLesionSegLib.logic import result_summary

    summary = result_summary(res.metrics)
    assert f"{len(names) - 2} lesion(s)" in summary and "model slicer-test-tiny (DEMO)" in summary and "on cpu" in summary
    assert res.segmentation.GetAttribute("BreastLesionSeg.Device").startswith("cpu")
    assert res.segmentation.GetAttribute("BreastLesionSeg.Model") == "slicer-test-tiny"


def test_cancel_leaves_the_scene_unchanged(ctx, loaded, tiny_model_dir, tmp_path):
    logic = SceneLogic(ctx, work_dir=tmp_path / "work", threads=1)
    pre, posts = logic.assigned_nodes(logic.propose_inputs())
    before = _scene_state(ctx.scene)
    job = logic.start_segmentation(logic.select_phases(INPUT_VOLUMES, pre, posts), _settings(tiny_model_dir))
    t0 = time.monotonic()
    while job.run.fraction is None:  # cancel while it is working (after the first progress line)
        job.run.poll()
        assert job.run.state == "running", "\n".join(job.run.log_lines[-20:])
        assert time.monotonic() - t0 < 120
        time.sleep(0.05)
    assert job.run.cancel() == "cancelled"
    assert _scene_state(ctx.scene) == before
    assert not job.run_dir.exists() and not job.output_dir.exists()
    assert list((tmp_path / "work").iterdir()) == []


def test_bad_inputs_are_refused_before_starting(ctx, loaded, tiny_model_dir, tmp_path):
    logic = SceneLogic(ctx, work_dir=tmp_path / "work")
    settings = _settings(tiny_model_dir)
    with pytest.raises(InputError, match="selected twice"):
        logic.start_segmentation(logic.select_phases(INPUT_VOLUMES, loaded[0], [loaded[0]]), settings)
    with pytest.raises(InputError, match="implausible phase order"):  # issue 14: the exam checks of every command
        logic.start_segmentation(logic.select_phases(INPUT_VOLUMES, loaded[1], [loaded[0], loaded[2]]), settings)
    with pytest.raises(InputError, match="not found"):
        logic.start_segmentation(logic.select_phases(INPUT_VOLUMES, loaded[0], loaded[1:]),
                                 SegmentationSettings(model="no-such-model"))
    assert not (tmp_path / "work").exists() or list((tmp_path / "work").iterdir()) == []
