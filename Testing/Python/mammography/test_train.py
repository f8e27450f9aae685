"""Cross-validated training (resumable), full-resolution Dice, and packaging of a fold as a model folder."""
from __future__ import annotations

import json

import pytest
import torch

from breastlesionseg.errors import InputError
from breastlesionseg.imaging2d.model_card2d import ModelCard2D
from breastlesionseg.imaging2d.training_loop import BEST_WEIGHTS, TrainLoopConfig
from breastlesionseg.mammography.cddcesm import read_cddcesm
from breastlesionseg.mammography.config import MammographyTrainConfig
from breastlesionseg.mammography.package_model import package
from breastlesionseg.mammography.predict import load_mammography_model
from breastlesionseg.mammography.train import cross_validate, full_resolution_dice
from breastlesionseg.mammography.training_data import prepare_case
from breastlesionseg.nn.hires_unet_config import HiResUNetConfig
from breastlesionseg.nn.registry import sha256_file


def _config() -> MammographyTrainConfig:
    return MammographyTrainConfig(input_size_px=32, n_folds=2, batch_size=2,
                                  network=HiResUNetConfig(levels=3, base_width=4),
                                  loop=TrainLoopConfig(max_epochs=2, patience_epochs=5, bf16=False))


def test_cross_validation_covers_every_image_once_and_resumes(tiny_cddcesm, tmp_path):
    run = tmp_path / "run"
    result = cross_validate(tiny_cddcesm, run, _config())
    held_out = [name for fold in result["folds"] for name in fold["held_out"]]
    assert sorted(held_out) == sorted(c.name for c in read_cddcesm(tiny_cddcesm))
    dice = [d for fold in result["folds"] for d in fold["dice_per_image"]]
    assert len(dice) == 10 and all(0.0 <= d <= 1.0 for d in dice)
    assert result["summary"]["n_images"] == 10
    assert result["summary"]["dice_mean"] == pytest.approx(sum(dice) / 10, abs=1e-3)
    assert all(f["epochs_run"] == 2 for f in result["folds"])
    with pytest.raises(InputError, match="resume"):
        cross_validate(tiny_cddcesm, run, _config())
    again = cross_validate(tiny_cddcesm, run, _config(), resume=True)  # finished folds are not retrained
    assert [f["dice_per_image"] for f in again["folds"]] == [f["dice_per_image"] for f in result["folds"]]

    model_dir = package(run, 1, tmp_path / "models" / "mg-test", force=False)
    card = ModelCard2D.read(model_dir)
    assert card.modality == "mammography" and card.arch == "hires_unet2d" and card.input_size_px == 32
    assert card.weights_sha256 == sha256_file(model_dir / "weights.pt")
    assert card.cv_metrics["cv_dice_mean"] == pytest.approx(result["summary"]["dice_mean"], abs=1e-4)
    assert card.split["held_out_images"] == result["folds"][1]["held_out"]
    assert "SMALL DATA" in card.training_data and "Khaled" in card.dataset_citation
    assert "Demonstration model" in (model_dir / "README.md").read_text(encoding="utf-8")
    assert json.loads((model_dir / "cross_validation.json").read_text(encoding="utf-8"))["summary"] == result["summary"]
    assert load_mammography_model(model_dir).model_id == "mg-test"
    with pytest.raises(InputError):
        package(run, 1, model_dir, force=False)  # never overwrites silently


class _OracleNetwork(torch.nn.Module):
    """Returns +/-10 logits from a fixed (N, 1, S, S) mask batch: perfect at network resolution."""

    def __init__(self, masks: torch.Tensor) -> None:
        super().__init__()
        self.masks = masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.masks[: x.shape[0]] * 20.0 - 10.0


def test_full_resolution_dice_maps_predictions_back_through_the_letterbox(tiny_cddcesm):
    cases = [prepare_case(c, 32) for c in read_cddcesm(tiny_cddcesm)[:1]]
    perfect = full_resolution_dice(_OracleNetwork(torch.stack([c.mask for c in cases])), cases, 0.5)
    assert perfect[0] > 0.9  # 48 -> 32 -> 48 px resampling costs a little at the border
    empty = full_resolution_dice(_OracleNetwork(torch.zeros(1, 1, 32, 32)), cases, 0.5)
    assert empty == [0.0]


def test_the_command_line_refuses_an_unknown_device_before_reading_images(tmp_path):
    from breastlesionseg.mammography.train import main

    with pytest.raises(InputError, match="tpu"):
        main(["--data", str(tmp_path / "no-such-folder"), "--output", str(tmp_path / "run"), "--device", "tpu"])
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_a_cross_validation_trained_on_cuda_matches_the_cpu_contract(tiny_cddcesm, tmp_path):
    result = cross_validate(tiny_cddcesm, tmp_path / "run", _config(), only_folds=[0], device="cuda")
    (fold,) = result["folds"]
    assert fold["epochs_run"] == 2 and all(0.0 <= d <= 1.0 for d in fold["dice_per_image"])
    weights = torch.load(tmp_path / "run" / "fold_0" / BEST_WEIGHTS, weights_only=True)
    assert all(v.device.type == "cpu" for v in weights.values())
