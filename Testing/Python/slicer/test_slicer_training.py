"""Corrected cases -> training set -> `breastlesionseg train` out of process -> new model registered (real CLI)."""
from __future__ import annotations

import json

import pytest

from BreastLesionSegLib import scene_io, segmentation_nodes as sn
from BreastLesionSegLib.logic import SceneLogic, training_curve
from BreastLesionSegLib.models import list_models
from BreastLesionSegLib.settings import INPUT_VOLUMES, SegmentationSettings


@pytest.mark.slow
def test_fine_tune_from_corrected_cases_and_register_the_model(ctx, tmp_path, tiny_model_dir):
    from breastlesionseg.phantom import PhantomConfig, generate_phantom

    logic = SceneLogic(ctx, work_dir=tmp_path / "work", threads=2)
    for seed in (0, 1):  # two "corrected" cases: the phantom truth stands in for the radiologist's segments
        ph = generate_phantom(PhantomConfig(seed=seed, size=(56, 32, 16), n_post=2, n_lesions=(1, 1),
                                            lesion_diameter_mm=(20.0, 30.0)))
        nodes = [scene_io.node_from_volume(ctx.scene, v, f"case {seed} {v.name}") for v in ph.exam.phases]
        seg = sn.create_segmentation_node(ctx, nodes[0], "corrected")
        sn.write_results_to_segmentation(ctx, seg, nodes[0], ph.breast_mask, ph.lesion_labels)
        selection = logic.select_phases(INPUT_VOLUMES, nodes[0], nodes[1:])
        logic.add_to_training_set(tmp_path / "dataset", f"case{seed}", seg, selection, corrected_by="Dr. T")
    settings = SegmentationSettings(model="slicer-test-tiny", user_model_folders=[str(tiny_model_dir)],
                                    dataset_folder=tmp_path / "dataset", training_output_folder=tmp_path / "models",
                                    training_epochs=1, device="cpu", fine_tune=True)
    run, out = logic.start_training(settings)
    assert run.wait(timeout_s=600) == "succeeded", "\n".join(run.log_lines[-20:])
    curve = training_curve(run.events)
    assert curve["epoch"] == [1.0] and curve["train_loss"][0] > 0 and 0.0 <= curve["val_dice"][0] <= 1.0
    assert run.done_output == str(out)
    info = logic.register_model(settings, out)
    assert info.folder == out.resolve() and settings.model == info.model_id  # selected by id
    assert logic.model_info(settings).folder == out.resolve()
    assert info.model_id in [m.model_id for m in list_models(settings.user_model_folders)]
    card = json.loads((out / "model_card.json").read_text(encoding="utf-8"))
    assert "3D Slicer" in card["training_data"]
