"""Training on a BUS-BRA-like folder of one's own images (the Slicer module's "Add to training set" pairs):
no 5-fold-cv.csv (patient-wise folds derived from the Case text), empty Pathology / BIRADS / Device
(unknown labels), and fine-tuning a shipped model with ``--init-from``. Synthetic pairs, no real data."""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from breastlesionseg.cli.main import main
from breastlesionseg.errors import DatasetError, EXIT_BAD_INPUT, EXIT_MODEL_ERROR
from breastlesionseg.imaging2d.model_card2d import ModelCard2D, load_model_2d, save_model_2d
from breastlesionseg.imaging2d.training_loop import BEST_WEIGHTS, HISTORY_FILE, TrainLoopConfig
from breastlesionseg.nn.factory2d import build_network_2d
from breastlesionseg.nn.model_paths import resolve_model
from breastlesionseg.nn.multitask_output import MultiTaskOutput
from breastlesionseg.ultrasound.busbra import NUM_FOLDS, fold_split, read_busbra
from breastlesionseg.ultrasound.config import UltrasoundTrainConfig
from breastlesionseg.ultrasound.calibrate_malignancy import MALIGNANCY_MODEL_FILE
from breastlesionseg.ultrasound.evaluate import cross_validation_report, evaluate_fold, summarize
from breastlesionseg.ultrasound.losses import UltrasoundLoss
from breastlesionseg.ultrasound.train import CONFIG_FILE, initial_network, make_validator, train_fold
from breastlesionseg.ultrasound.training_data import load_images

from .conftest import write_user_folder

#: (case, pathology, BI-RADS, device) of the 15 pairs: 8 patients, some images of unknown labels
PAIRS = [("P01", "malignant", "5", "Scanner A"), ("P01", "malignant", "5", "Scanner A"),
         ("P02", "benign", "3", "Scanner A"), ("P02", "", "", ""),
         ("P03", "", "", ""), ("P03", "", "", ""),
         ("P04", "malignant", "4", "Scanner B"), ("P04", "benign", "", ""),
         ("P05", "benign", "2", "Scanner B"), ("P05", "benign", "2", "Scanner B"),
         ("P06", "", "4", "Scanner A"),
         ("P07", "malignant", "", "Scanner B"), ("P07", "", "", ""),
         ("site-08 left", "benign", "3", ""), ("site-08 left", "", "", "")]
FOLD = 0  # the checks below need a fold with training and validation patients (asserted)
SHIPPED_US = "us-attunet-busbra"


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory):
    return write_user_folder(tmp_path_factory.mktemp("user") / "pairs", PAIRS)


def _tiny_config(input_size: int = 32, max_epochs: int = 1) -> UltrasoundTrainConfig:
    return UltrasoundTrainConfig(network={"widths": [4, 8, 8]}, input_size_px=input_size, batch_size=4,
                                 loop=TrainLoopConfig(max_epochs=max_epochs, patience_epochs=1, bf16=False))


def test_folds_are_derived_patient_wise_and_deterministically(user_folder, caplog):
    with caplog.at_level(logging.INFO, logger="breastlesionseg.ultrasound.busbra"):
        records = read_busbra(user_folder)
    assert sum("folds derived" in m for m in caplog.messages) == 1
    assert len(records) == 15 and len({r.case_id for r in records}) == 8
    assert read_busbra(user_folder) == records  # same result twice
    for record in records:  # the documented rule: test fold = sha256(case text) mod 5
        assert record.test_fold == int(hashlib.sha256(record.case_id.encode()).hexdigest(), 16) % NUM_FOLDS
        assert record.roles[record.test_fold] == "test" and record.roles.count("test") == 1
    for fold in range(NUM_FOLDS):
        split = fold_split(records, fold)
        cases = {role: {r.case_id for r in rows} for role, rows in split.items()}
        assert not (cases["train"] & cases["val"] or cases["train"] & cases["test"] or cases["val"] & cases["test"])
        assert sum(len(rows) for rows in split.values()) == 15
        if len(cases["train"] | cases["val"]) >= 2:
            assert len(cases["val"]) == max(1, round(0.2 * len(cases["train"] | cases["val"])))
    assert sum(len(fold_split(records, k)["test"]) for k in range(NUM_FOLDS)) == 15
    split = fold_split(records, FOLD)
    assert split["train"] and split["val"]


def test_existing_fold_file_is_used(user_folder, tmp_path):
    folder = tmp_path / "with_folds"
    shutil.copytree(user_folder, folder)
    records = read_busbra(user_folder)
    with (folder / "5-fold-cv.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "Pathology", "kFold"] + [f"valid_{k + 1}" for k in range(NUM_FOLDS)])
        for i, r in enumerate(records):  # every image in test fold 2 (kFold 3); validation in fold 0 for even rows
            writer.writerow([r.image_id, "", 3, "0" if i % 2 == 0 else "1", 1, "NaN", 1, 1])
    listed = read_busbra(folder)
    assert all(r.test_fold == 2 for r in listed)
    assert [r.roles[0] for r in listed] == ["val" if i % 2 == 0 else "train" for i in range(15)]


def test_unknown_labels(user_folder, tmp_path):
    records = {r.image_id: r for r in read_busbra(user_folder)}
    unknown = records["bus_P03-4"]
    assert (unknown.case_id, unknown.malignant, unknown.birads, unknown.device) == ("P03", None, None, "unknown")
    known = records["bus_P01-0"]
    assert (known.malignant, known.birads, known.device) == (True, 5, "Scanner A")
    assert records["bus_P02-2"].malignant is False and records["bus_P06-10"].birads == 4
    assert records["bus_site-08_left-13"].case_id == "site-08 left"
    assert all(isinstance(r.case_id, str) for r in records.values())
    bad = write_user_folder(tmp_path / "bad", [("P1", "probably bad", "", "")])
    with pytest.raises(DatasetError, match="Pathology.*probably bad"):
        read_busbra(bad)


def _batch_and_output(known: list[float]):
    generator = torch.Generator().manual_seed(0)
    n = len(known)
    output = MultiTaskOutput(*(torch.randn(shape, generator=generator).requires_grad_() for shape in ((n, 1, 8, 8), n, n)))
    batch = {"mask": (torch.rand(n, 1, 8, 8, generator=generator) > 0.5).float(),
             "lesion": torch.tensor([1.0] * (n - 1) + [0.0]), "malignant": torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0][:n]),
             "malignant_known": torch.tensor(known)}
    return output, batch


def test_malignancy_loss_uses_known_pathology_only():
    loss = UltrasoundLoss(malignancy_weight=1.0)
    without = UltrasoundLoss(malignancy_weight=0.0)
    output, batch = _batch_and_output([1.0, 0.0, 1.0, 1.0, 0.0])  # rows 0, 2, 3 known lesions; row 4 is a negative
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        output.malignancy_logit[[0, 2, 3]], batch["malignant"][[0, 2, 3]])
    assert (loss(output, batch) - without(output, batch)).item() == pytest.approx(expected.item(), rel=1e-5)
    output, batch = _batch_and_output([0.0] * 5)  # a whole batch of unknown pathology
    value = loss(output, batch)
    assert math.isfinite(value.item()) and value.item() == pytest.approx(without(output, batch).item())
    value.backward()
    assert output.malignancy_logit.grad is None and torch.isfinite(output.seg_logits.grad).all()
    legacy = {k: v for k, v in _batch_and_output([1.0] * 5)[1].items() if k != "malignant_known"}
    output = _batch_and_output([1.0] * 5)[0]
    assert loss(output, legacy).item() == pytest.approx(loss(output, {**legacy, "malignant_known": torch.ones(5)}).item())


def test_validator_auc_uses_known_labels_only(user_folder):
    records = read_busbra(user_folder)
    images = load_images([r for r in records if r.malignant is None])
    torch.manual_seed(0)
    network = build_network_2d("attention_unet2d", {"widths": [4, 8, 8]}).eval()
    with torch.no_grad():
        metrics = make_validator(images, 32)(network)
    assert math.isnan(metrics["malignancy_auc"]) and math.isfinite(metrics["score"])
    assert metrics["score"] == pytest.approx(metrics["dice"])
    mixed = load_images(records)
    with torch.no_grad():
        auc = make_validator(mixed, 32)(network)["malignancy_auc"]
        known = make_validator([i for i in mixed if i.record.malignant is not None], 32)(network)["malignancy_auc"]
    assert auc == pytest.approx(known)


def test_short_training_run_and_evaluation(user_folder, tmp_path):
    run = tmp_path / "run"
    fold_dir = train_fold(user_folder, FOLD, run, _tiny_config())
    assert (fold_dir / BEST_WEIGHTS).is_file()
    history = json.loads((fold_dir / HISTORY_FILE).read_text(encoding="utf-8"))
    assert [h["epoch"] for h in history] == [1] and math.isfinite(history[0]["train_loss"])
    assert "init_from" not in json.loads((fold_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    test = fold_split(read_busbra(user_folder), FOLD)["test"]
    rows = evaluate_fold(user_folder, run, FOLD)
    lesions = [r for r in rows if r["kind"] == "lesion"]
    assert [r["image_id"] for r in lesions] == [r.image_id for r in test]
    assert [r["malignant"] for r in lesions] == [r.malignant for r in test]
    assert all(isinstance(r["case_id"], str) for r in lesions)
    report = cross_validation_report(run)
    assert report["folds_evaluated"] == [FOLD] and report["pooled"]["n_images"] == len(test)
    # a handful of images of known pathology fits no malignancy model: the network's probability is used alone
    stored = json.loads((fold_dir / MALIGNANCY_MODEL_FILE).read_text(encoding="utf-8"))
    assert stored["malignancy_model"] is None and "at least 10" in stored["reason"]
    assert all(r["malignancy_probability"] == r["network_malignancy_probability"] for r in lesions)


def test_summary_with_unknown_pathology():
    rows = [{"kind": "lesion", "device": "unknown", "birads": b, "malignant": m, "malignancy_probability": p,
             "lesion_present_probability": 0.9, "dice": 0.8, "iou": 0.7, "precision": 0.8, "recall": 0.8, "hd95_px": 2.0}
            for b, m, p in [(4, True, 0.8), (None, None, 0.1), (3, False, 0.3), (None, None, 0.9), (3, False, 0.9)]]
    rows.append({"kind": "lesion_free_crop", "device": "unknown", "lesion_present_probability": 0.2,
                 "false_positive_area_px": 0})
    summary = summarize(rows)
    assert summary["n_images"] == 5 and summary["dice"] == pytest.approx(0.8)
    assert summary["malignancy_auc"] == pytest.approx(0.5)  # 0.8 vs benign 0.3, 0.9: one pair of two
    assert summary["n_malignancy_known"] == 3 and summary["n_malignant"] == 1
    assert math.isnan(summarize(rows[1:2])["malignancy_auc"])


def _cli(data, output, *extra):
    return main(["train-ultrasound", "--data", str(data), "--output", str(output), "--folds", str(FOLD),
                 "--batch-size", "4", "--max-epochs", "1", "--patience", "1", "--no-bf16", "--threads", "1", *extra])


def test_init_from_shipped_model_starts_from_its_weights(user_folder, tmp_path):
    try:
        shipped, card = load_model_2d(SHIPPED_US)
    except Exception as exc:  # noqa: BLE001 - the repository's models/ folder is absent
        pytest.skip(f"{SHIPPED_US} not available: {exc}")
    # the network the run starts from is the shipped one, tensor for tensor
    config = UltrasoundTrainConfig(arch=card.arch, network=card.config, input_size_px=32, batch_size=4)
    start, origin = initial_network(config, SHIPPED_US)
    assert origin["init_from_model_id"] == SHIPPED_US and origin["init_from_sha256"] == card.weights_sha256
    reference = shipped.state_dict()
    assert all(torch.equal(value, reference[key]) for key, value in start.state_dict().items())
    # end to end: one epoch at a negligible learning rate leaves the convolution weights where they started
    run = tmp_path / "run"
    assert _cli(user_folder, run, "--init-from", SHIPPED_US, "--input-size", "32", "--learning-rate", "1e-12") == 0
    recorded = json.loads((run / f"fold_{FOLD}" / CONFIG_FILE).read_text(encoding="utf-8"))
    assert (recorded["arch"], recorded["network"]["widths"]) == (card.arch, list(card.config["widths"]))
    assert recorded["init_from"] == SHIPPED_US and recorded["input_size_px"] == 32
    trained = torch.load(run / f"fold_{FOLD}" / BEST_WEIGHTS, map_location="cpu", weights_only=True)
    first_conv = next(k for k, v in reference.items() if v.ndim == 4)
    assert torch.allclose(trained[first_conv], reference[first_conv], atol=1e-8)
    fresh = build_network_2d(card.arch, card.config).state_dict()[first_conv]
    assert not torch.allclose(fresh, reference[first_conv], atol=1e-3)
    # shipped as a model folder, its card says what it is: the site's images, fine-tuned, no BUS-BRA claim
    from breastlesionseg.imaging2d.model_card2d import ModelCard2D
    from breastlesionseg.ultrasound.ship import ship_fold

    evaluate_fold(user_folder, run, FOLD)
    folder = ship_fold(user_folder, run, FOLD, tmp_path / "site-model", cross_validation_report(run))
    shipped_card = ModelCard2D.read(folder)
    assert not shipped_card.trained_from_scratch and shipped_card.dataset_citation == ""
    assert f"Fine-tuned from the model '{SHIPPED_US}'" in shipped_card.training_data
    assert "BUS-BRA" not in shipped_card.training_data and "derived" in shipped_card.split["scheme"]
    assert shipped_card.test_time_flip and shipped_card.lesion_zoom_margin == 1.0
    assert shipped_card.malignancy_model == {}  # too few images of known pathology to fit one


def test_init_from_refuses_other_models(user_folder, tmp_path, caplog):
    torch.manual_seed(0)
    net = build_network_2d("attention_unet2d", {"widths": [4, 8, 8]})
    mammo = save_model_2d(net.state_dict(), ModelCard2D(model_id="mm-tiny", modality="mammography",
                                                        arch="attention_unet2d", config=net.config.to_dict(),
                                                        input_size_px=64), tmp_path / "mm-tiny")
    assert _cli(user_folder, tmp_path / "run", "--init-from", str(mammo)) == EXIT_MODEL_ERROR
    assert "mammography model" in caplog.text and not (tmp_path / "run").exists()
    us = save_model_2d(net.state_dict(), ModelCard2D(model_id="us-tiny", modality="ultrasound",
                                                     arch="attention_unet2d", config=net.config.to_dict(),
                                                     input_size_px=64), tmp_path / "us-tiny")
    assert _cli(user_folder, tmp_path / "run", "--init-from", str(us), "--attention", "none") == EXIT_BAD_INPUT
    assert not (tmp_path / "run").exists()
    assert resolve_model(us) == us


def test_an_unusable_device_is_refused_before_anything_is_written(user_folder, tmp_path, caplog):
    assert _cli(user_folder, tmp_path / "run", "--device", "npu") == EXIT_BAD_INPUT
    assert "--device 'npu'" in caplog.text and not (tmp_path / "run").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_a_fold_trained_on_cuda(user_folder, tmp_path):
    run = tmp_path / "run"
    assert _cli(user_folder, run, "--device", "cuda") == 0
    weights = torch.load(run / f"fold_{FOLD}" / BEST_WEIGHTS, weights_only=True)
    assert all(v.device.type == "cpu" for v in weights.values())
    history = json.loads((run / f"fold_{FOLD}" / HISTORY_FILE).read_text(encoding="utf-8"))
    assert [h["epoch"] for h in history] == [1] and math.isfinite(history[0]["train_loss"])
