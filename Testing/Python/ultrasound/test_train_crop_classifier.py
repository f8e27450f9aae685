"""Training the lesion-crop classifier of a fold (resumable), its use in evaluation, the malignancy model's
refit when the classifier changes, and shipping it. Synthetic BUS-BRA-like pairs, no real data."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from breastlesionseg.cli.main import main
from breastlesionseg.errors import DatasetError, InputError
from breastlesionseg.imaging2d.model_card2d import ModelCard2D
from breastlesionseg.imaging2d.training_loop import BEST_WEIGHTS, HISTORY_FILE, TrainLoopConfig
from breastlesionseg.io.atomic import write_text_atomic
from breastlesionseg.nn.model_paths import sha256_file
from breastlesionseg.ultrasound.calibrate_malignancy import MALIGNANCY_MODEL_FILE, malignancy_model_current
from breastlesionseg.ultrasound.config import CROP_CLASSIFIER_MIRROR, CropClassifierTrainConfig
from breastlesionseg.ultrasound.crop_classifier import CLASSIFIER_WEIGHTS_FILE
from breastlesionseg.ultrasound.evaluate import evaluate_fold, load_fold_model
from breastlesionseg.ultrasound.model import load_ultrasound_model
from breastlesionseg.ultrasound.predict import predict_image
from breastlesionseg.ultrasound.train_crop_classifier import CLASSIFIER_DIR, member_dir, train_crop_classifier

from .conftest import write_user_folder

#: 30 patients, one image each, benign and malignant alternating: fold 0 has 20 training (8 malignant),
#: 5 validation (3 malignant) and 5 test patients
PAIRS = [(f"C{i:02d}", "malignant" if i % 2 else "benign", "4", "Scanner A") for i in range(30)]


def _config(seed: int = 0, epochs: int = 2, margin: float = 1.0) -> CropClassifierTrainConfig:
    return CropClassifierTrainConfig(margin=margin, size_px=32, batch_size=8, loop=TrainLoopConfig(
        max_epochs=epochs, patience_epochs=5, learning_rate=2e-3, bf16=False, seed=seed))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A run folder whose fold 0 has a 1-epoch tiny network (trained through the CLI) and two 2-epoch classifiers
    (margins 1 and 2)."""
    root = tmp_path_factory.mktemp("crops")
    data = write_user_folder(root / "pairs", PAIRS)
    run = root / "run"
    assert main(["train-ultrasound", "--data", str(data), "--output", str(run), "--folds", "0", "--max-epochs", "1",
                 "--input-size", "32", "--batch-size", "4", "--no-bf16", "--threads", "1"]) == 0
    train_crop_classifier(data, 0, run, _config())
    train_crop_classifier(data, 0, run, _config(margin=2.0), member=1)
    return data, run


def test_classifier_run_files_and_resume(trained_run, monkeypatch):
    import breastlesionseg.ultrasound.train_crop_classifier as module

    data, run = trained_run
    folder = run / "fold_0" / CLASSIFIER_DIR
    history = json.loads((folder / HISTORY_FILE).read_text(encoding="utf-8"))
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(0.0 <= h["val_malignancy_auc"] <= 1.0 for h in history)
    stored = json.loads((folder / "train_config.json").read_text(encoding="utf-8"))
    assert stored["fold"] == 0 and stored["size_px"] == 32 and stored["margin"] == 1.0
    before = sha256_file(folder / BEST_WEIGHTS)
    with monkeypatch.context() as patched:  # finished: nothing more to do, not even reading the images
        patched.setattr(module, "load_images_logged", lambda records: pytest.fail("images read for a finished run"))
        train_crop_classifier(data, 0, run, _config(), resume=True)
    assert sha256_file(folder / BEST_WEIGHTS) == before
    assert len(json.loads((folder / HISTORY_FILE).read_text(encoding="utf-8"))) == 2
    with pytest.raises(InputError, match="--resume"):
        train_crop_classifier(data, 0, run, _config())
    config_text = (folder / "train_config.json").read_text(encoding="utf-8")
    with pytest.raises(InputError, match=r"other settings for \['margin'\]"):
        train_crop_classifier(data, 0, run, _config(margin=2.0), resume=True)  # another member's margin
    assert (folder / "train_config.json").read_text(encoding="utf-8") == config_text  # the record is kept


def test_resuming_a_segmentation_fold_with_other_settings_is_refused_and_keeps_its_record(trained_run):
    from breastlesionseg.errors import EXIT_BAD_INPUT

    data, run = trained_run
    fold_config = run / "fold_0" / "train_config.json"
    before = fold_config.read_text(encoding="utf-8")
    weights = sha256_file(run / "fold_0" / BEST_WEIGHTS)
    assert main(["train-ultrasound", "--data", str(data), "--output", str(run), "--folds", "0", "--max-epochs", "1",
                 "--input-size", "48", "--batch-size", "4", "--no-bf16", "--threads", "1", "--resume"]) == EXIT_BAD_INPUT
    assert fold_config.read_text(encoding="utf-8") == before and json.loads(before)["input_size_px"] == 32
    assert sha256_file(run / "fold_0" / BEST_WEIGHTS) == weights


def test_members_are_trained_in_order_and_each_with_its_own_seed_and_margin(trained_run):
    data, run = trained_run
    with pytest.raises(InputError, match="member must be in 0..1"):
        train_crop_classifier(data, 0, run, _config(), member=2)
    with pytest.raises(InputError, match="member 0 .* before member 1"):
        train_crop_classifier(data, 0, run / "other", _config(), member=1)
    first, second = (json.loads((member_dir(run / "fold_0", m) / "train_config.json").read_text(encoding="utf-8"))
                     for m in (0, 1))
    assert (first["margin"], second["margin"]) == (1.0, 2.0)
    assert sha256_file(member_dir(run / "fold_0", 0) / BEST_WEIGHTS) != sha256_file(member_dir(run / "fold_0", 1) / BEST_WEIGHTS)


def test_untrained_fold_is_refused(trained_run, tmp_path):
    data, _ = trained_run
    with pytest.raises(DatasetError, match="train-ultrasound first"):
        train_crop_classifier(data, 0, tmp_path / "empty-run", _config())


def test_evaluation_uses_the_classifier_and_refits_when_it_changes(trained_run):
    data, run = trained_run
    fold_dir = run / "fold_0"
    model = load_fold_model(fold_dir)
    members = model.card.crop_classifier["members"]
    assert [(m["margin"], m["size_px"], m["weights_file"]) for m in members] == [
        (1.0, 32, CLASSIFIER_WEIGHTS_FILE), (2.0, 32, "crop_classifier_1.pt")]
    assert len(model.crop_classifier.members) == 2
    rows = evaluate_fold(data, run, 0)
    lesions = [r for r in rows if r["kind"] == "lesion"]
    found = [r for r in lesions if r["classifier_malignancy_probability"] is not None]
    assert lesions and found and all(0.0 < r["classifier_malignancy_probability"] < 1.0 for r in found)
    stored = json.loads((fold_dir / MALIGNANCY_MODEL_FILE).read_text(encoding="utf-8"))
    assert stored["crop_classifier_sha256"] == [sha256_file(member_dir(fold_dir, m) / BEST_WEIGHTS) for m in (0, 1)]
    assert stored["crop_classifier_mirror"] == [CROP_CLASSIFIER_MIRROR] * 2
    assert [m.mirror for m in model.crop_classifier.members] == [CROP_CLASSIFIER_MIRROR] * 2
    assert malignancy_model_current(fold_dir)
    # one fitted with the other mirror setting is stale too
    write_text_atomic(fold_dir / MALIGNANCY_MODEL_FILE,
                      json.dumps({**stored, "crop_classifier_mirror": [not CROP_CLASSIFIER_MIRROR] * 2}), overwrite=True)
    assert not malignancy_model_current(fold_dir)
    write_text_atomic(fold_dir / MALIGNANCY_MODEL_FILE, json.dumps(stored), overwrite=True)
    assert malignancy_model_current(fold_dir)
    # a retrained classifier makes the stored malignancy model stale: evaluation fits it again
    shutil.rmtree(fold_dir / CLASSIFIER_DIR)
    train_crop_classifier(data, 0, run, _config(seed=1))
    assert not malignancy_model_current(fold_dir)
    evaluate_fold(data, run, 0)
    assert malignancy_model_current(fold_dir)


def test_shipping_copies_the_classifier_and_the_shipped_folder_predicts_the_same(trained_run, tmp_path):
    import numpy as np

    from breastlesionseg.ultrasound.evaluate import cross_validation_report
    from breastlesionseg.ultrasound.ship import ship_fold

    data, run = trained_run
    folder = ship_fold(data, run, 0, tmp_path / "site-model", cross_validation_report(run))
    card = ModelCard2D.read(folder)
    members = card.crop_classifier["members"]
    assert [m["weights_file"] for m in members] == [CLASSIFIER_WEIGHTS_FILE, "crop_classifier_1.pt"]
    for index, member in enumerate(members):
        shipped_sha256 = sha256_file(folder / member["weights_file"])
        assert shipped_sha256 == member["weights_sha256"] == sha256_file(member_dir(run / "fold_0", index) / BEST_WEIGHTS)
    shipped, fold_model = load_ultrasound_model(folder), load_fold_model(run / "fold_0")
    image = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(next((data / "Images").iterdir())), np.float32)
    a = predict_image(image, shipped, with_heat_map=False)
    b = predict_image(image, fold_model, with_heat_map=False)
    assert a.classifier_malignancy_probability == pytest.approx(b.classifier_malignancy_probability, abs=1e-6)
    assert a.malignancy_probability == pytest.approx(b.malignancy_probability, abs=1e-6)


def test_evaluate_cli_reevaluates_when_the_classifier_changes_and_skips_one_in_training(trained_run):
    import os

    import torch

    from breastlesionseg.imaging2d.training_loop import LAST_CHECKPOINT
    from breastlesionseg.ultrasound.evaluate import TEST_RESULTS

    data, run = trained_run
    fold_dir = run / "fold_0"
    args = ["evaluate-ultrasound", "--data", str(data), "--run", str(run), "--threads", "1"]
    assert main(args) == 0
    results = fold_dir / TEST_RESULTS
    first = results.stat().st_mtime_ns
    assert main(args) == 0 and results.stat().st_mtime_ns == first  # nothing changed: not evaluated again
    weights = member_dir(fold_dir, 1) / BEST_WEIGHTS  # the second classifier retrained
    later = first + 5_000_000_000
    os.utime(weights, ns=(later, later))
    assert main(args) == 0 and results.stat().st_mtime_ns != first
    report = json.loads((run / "report" / "report.json").read_text(encoding="utf-8"))
    assert "classifier_malignancy_auc" in report["mean_of_folds"] and report["folds_evaluated"] == [0]
    state = torch.load(member_dir(fold_dir, 1) / LAST_CHECKPOINT, weights_only=True)
    torch.save({**state, "finished": False}, member_dir(fold_dir, 1) / LAST_CHECKPOINT)
    assert main(args) != 0  # the only fold's classifier is still training: no fold to report
    assert not results.is_file()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_a_classifier_trained_on_cuda(trained_run, tmp_path):
    data, run = trained_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "fold_0" / CLASSIFIER_DIR)
    folder = train_crop_classifier(data, 0, copy, _config(), device="cuda")
    weights = torch.load(folder / BEST_WEIGHTS, weights_only=True)
    assert all(v.device.type == "cpu" for v in weights.values())
    history = json.loads((folder / HISTORY_FILE).read_text(encoding="utf-8"))
    assert [h["epoch"] for h in history] == [1, 2] and all(0.0 <= h["val_malignancy_auc"] <= 1.0 for h in history)
