"""``breastlesionseg demo``: phantom -> segment -> table + Dice vs truth, fresh output folder, demo banner."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from breastlesionseg.cli.cmd_demo import fresh_output_dir
from breastlesionseg.cli.main import main
from breastlesionseg.io import read_label_volume
from breastlesionseg.metrics import evaluate_segmentation

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "models" / "mm3dunet-phantom-demo"


@pytest.fixture(scope="module")
def tiny_demo_model(tmp_path_factory) -> Path:
    """A tiny random MM-3DUNet marked as a demo model (fast; the numbers are not the point here)."""
    from breastlesionseg.nn.factory import build_network
    from breastlesionseg.nn.model_card import ModelCard
    from breastlesionseg.nn.registry import save_model

    torch.manual_seed(2)
    card = ModelCard(model_id="tiny-demo", arch="mm3dunet",
                     config={"in_channels": 3, "out_channels": 1, "base_width": 4, "levels": 2, "expansion": 2,
                             "act_channels": 4},
                     input_channels=["pre", "post1", "sub1"], target_spacing_mm=(5.0, 5.0, 6.0),
                     patch_size=(24, 40, 72), demo=True)
    folder = tmp_path_factory.mktemp("models") / "tiny-demo"
    save_model(build_network("mm3dunet", card.config), card, folder)
    return folder


def test_fresh_output_dir_never_reuses_a_non_empty_folder(tmp_path):
    base = tmp_path / "breastlesionseg-demo"
    assert fresh_output_dir(base) == base
    base.mkdir()
    assert fresh_output_dir(base) == base  # empty: fine
    (base / "metrics.json").write_text("{}")
    (tmp_path / "breastlesionseg-demo-2").mkdir()
    (tmp_path / "breastlesionseg-demo-2" / "x").write_text("")
    assert fresh_output_dir(base) == tmp_path / "breastlesionseg-demo-3"


@pytest.mark.slow  # ~8 s of CPU, but 35-60 s wall on the shared 2-core machine
def test_demo_end_to_end_default_folder_table_dice_and_banner(tmp_path, tiny_demo_model, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first = tmp_path / "breastlesionseg-demo"
    first.mkdir()
    (first / "segmentation.seg.nrrd").write_text("an earlier, edited result")
    assert main(["demo", "--seed", "0", "--model", str(tiny_demo_model), "--device", "cpu", "--progress", "none"]) == 0
    out = tmp_path / "breastlesionseg-demo-2"
    assert (first / "segmentation.seg.nrrd").read_text(encoding="utf-8") == "an earlier, edited result"
    printed = capsys.readouterr().out
    assert "DEMO model trained only on synthetic phantoms" in printed
    assert "Dice against the phantom truth" in printed and "lesion" in printed and "curve" in printed
    assert str(out.resolve()) in printed
    for name in ("segmentation.seg.nrrd", "lesions.nii.gz", "breast_mask.nii.gz", "metrics.json", "overview.png"):
        assert (out / name).is_file(), name
    # the Dice printed and stored is the Dice of the written lesion map against the written phantom truth
    doc = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    stored = doc["demo"]["evaluation_vs_phantom_truth"]["dice"]
    pred = read_label_volume(out / "lesions.nii.gz")
    truth = read_label_volume(out / "phantom_inputs" / "lesions.nii.gz")
    recomputed = evaluate_segmentation(pred, truth)["dice"]
    assert stored == pytest.approx(recomputed, abs=1e-9)
    assert f"{stored:.3f}" in printed
    assert doc["demo"]["phantom_seed"] == 0 and doc["model"]["demo"] is True
    assert len(doc["demo"]["truth_lesions"]) == int(np.max(truth.array))
    assert 0.9 < doc["demo"]["breast_region_dice_vs_phantom_truth"] <= 1.0


def test_demo_refuses_explicit_non_empty_output(tmp_path, tiny_demo_model):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["demo", "--output", str(out), "--model", str(tiny_demo_model), "--progress", "none"]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


@pytest.mark.slow
@pytest.mark.skipif(not (SHIPPED / "model_card.json").is_file(), reason="shipped demo model not in models/ yet")
def test_demo_with_the_shipped_model(tmp_path, capsys):
    """The README's main command: the shipped model on held-out phantom seed 0."""
    out = tmp_path / "demo"
    assert main(["demo", "--output", str(out), "--device", "cpu", "--progress", "none"]) == 0
    printed = capsys.readouterr().out
    assert "DEMO model trained only on synthetic phantoms" in printed
    doc = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert doc["model"]["id"] == "mm3dunet-phantom-demo" and doc["model"]["demo"] is True
    ev = doc["demo"]["evaluation_vs_phantom_truth"]
    # the acceptance thresholds live in inference/test_inference_shipped_model.py; here: it finds the lesions
    assert ev["dice"] > 0.5, ev["dice"]
    assert ev["detection"]["counts"]["tp"] >= 1
    assert f"{ev['dice']:.3f}" in printed
