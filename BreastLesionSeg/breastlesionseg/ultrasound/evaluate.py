"""Test-fold evaluation of trained BUS-BRA folds, the cross-validation report, and shipping a fold's model.

Per fold ``run/fold_<k>/``: ``test_results.json`` holds one row per test image (Dice, IoU, precision,
recall, HD95 in px at the image's own size, lesion-present and malignancy probabilities, device,
BI-RADS; ``malignant`` and ``birads`` are null when unknown, ``case_id`` is text) plus one row per
lesion-free crop of a test image (the synthetic negatives). Predictions go through :func:`predict_image`,
the same path as the product.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..imaging2d.lesion_crops import crop
from ..imaging2d.metrics2d import roc_auc, segmentation_metrics, sensitivity_specificity
from ..imaging2d.model_card2d import ModelCard2D
from ..imaging2d.training_loop import BEST_WEIGHTS
from ..io.atomic import write_text_atomic
from ..nn.factory2d import build_network_2d
from .busbra import CITATION, NUM_FOLDS
from .config import LESION_ZOOM_MARGIN, TEST_TIME_FLIP
from .model import UltrasoundModel
from .predict import predict_image
from .train import CONFIG_FILE, run_split
from .training_data import load_images

log = logging.getLogger(__name__)

TEST_RESULTS = "test_results.json"


def fold_classifier_weights(fold_dir: Path) -> list[Path]:
    """Where the fold's crop-classifier members keep their best weights, member 0 first (those with a run folder)."""
    from .train_crop_classifier import member_dirs

    return [folder / BEST_WEIGHTS for folder in member_dirs(fold_dir)]


def fold_classifier(fold_dir: Path) -> dict[str, Any] | None:
    """The card's ``crop_classifier`` field of the fold's trained crop classifiers (their weights hashed), or None
    when it has none; a member without best weights yet ends the ensemble there."""
    from ..nn.model_paths import sha256_file
    from .crop_classifier import classifier_spec
    from .train_crop_classifier import member_dirs, read_classifier_config

    members = []
    for member, folder in enumerate(member_dirs(fold_dir)):
        run_config, weights = read_classifier_config(folder), folder / BEST_WEIGHTS
        if run_config is None or not weights.is_file():
            break
        members.append(classifier_spec(run_config, sha256_file(weights), member))
    return {"members": members} if members else None


def fold_card(fold_dir: Path, model_id: str) -> ModelCard2D:
    """A card (without sha256) describing the fold's model, from its ``train_config.json``."""
    from .calibrate import THRESHOLD_FILE
    from .calibrate_malignancy import read_fold_malignancy_model

    config = json.loads((fold_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    calibration = fold_dir / THRESHOLD_FILE
    threshold = json.loads(calibration.read_text(encoding="utf-8"))["threshold"] if calibration.is_file() else 0.5
    return ModelCard2D(model_id=model_id, modality="ultrasound", arch=config["arch"], config=config["network"],
                       input_size_px=int(config["input_size_px"]), lesion_present_threshold=threshold,
                       test_time_flip=TEST_TIME_FLIP, lesion_zoom_margin=LESION_ZOOM_MARGIN,
                       malignancy_model=read_fold_malignancy_model(fold_dir) or {},
                       crop_classifier=fold_classifier(fold_dir) or {})


def load_fold_model(fold_dir: Path) -> UltrasoundModel:
    """The fold's best-validation network (and crop classifier, when trained) as an :class:`UltrasoundModel`."""
    from .crop_classifier import load_crop_classifiers

    card = fold_card(fold_dir, f"busbra-{fold_dir.name}")
    network = build_network_2d(card.arch, card.config)
    network.load_state_dict(torch.load(fold_dir / BEST_WEIGHTS, map_location="cpu", weights_only=True))
    crop_classifier = None
    if card.crop_classifier:
        weights = fold_classifier_weights(fold_dir)[:len(card.crop_classifier["members"])]
        crop_classifier = load_crop_classifiers(weights, card.crop_classifier, card.model_id)
    return UltrasoundModel(network.eval(), card, crop_classifier)


def evaluate_fold(data_root: str | Path, run_dir: str | Path, fold: int) -> list[dict[str, Any]]:
    """Predict every test image of ``fold`` and its largest lesion-free crop; writes ``test_results.json``."""
    from .calibrate import THRESHOLD_FILE, calibrate_lesion_threshold
    from .calibrate_malignancy import fit_fold_malignancy_model, malignancy_model_current

    fold_dir = Path(run_dir) / f"fold_{fold}"
    model = load_fold_model(fold_dir)
    if not (fold_dir / THRESHOLD_FILE).is_file():
        calibrate_lesion_threshold(data_root, fold_dir, model.network, model.card.input_size_px, fold)
        model = load_fold_model(fold_dir)
    if not malignancy_model_current(fold_dir):
        fit_fold_malignancy_model(data_root, fold_dir, fold, model.without(malignancy_model=True))
        model = load_fold_model(fold_dir)
    rows = []
    for image in load_images(run_split(data_root, fold_dir, fold)["test"]):
        record = image.record
        raw = _raw_pixels(record.image_path)
        result = predict_image(raw, model, with_heat_map=False)
        rows.append({"kind": "lesion", "image_id": record.image_id, "case_id": record.case_id, "device": record.device,
                     "birads": record.birads, "malignant": record.malignant,
                     "lesion_present_probability": result.lesion_present_probability,
                     "malignancy_probability": result.malignancy_probability,
                     "network_malignancy_probability": result.network_malignancy_probability,
                     "classifier_malignancy_probability": result.classifier_malignancy_probability,
                     **segmentation_metrics(result.mask.astype(bool), image.mask)})
        if image.free_regions:
            negative = predict_image(crop(raw, image.free_regions[0]), model, with_heat_map=False)
            rows.append({"kind": "lesion_free_crop", "image_id": record.image_id, "device": record.device,
                         "lesion_present_threshold": model.card.lesion_present_threshold,
                         "lesion_present_probability": negative.lesion_present_probability,
                         "false_positive_area_px": negative.area_px})
    write_text_atomic(fold_dir / TEST_RESULTS, json.dumps(rows, indent=1, default=float), overwrite=True)
    return rows


def _raw_pixels(path: Path) -> np.ndarray:
    from ..imaging2d.image_io import read_image_2d

    return read_image_2d(path).pixels


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Segmentation means, malignancy AUC/sensitivity/specificity and lesion-present figures of result rows.

    Malignancy figures use the lesion rows of known pathology only (``malignant`` not null; their count is
    ``n_malignancy_known``); segmentation and lesion-present figures use every row.
    """
    lesions = [r for r in rows if r["kind"] == "lesion"]
    negatives = [r for r in rows if r["kind"] == "lesion_free_crop"]
    out: dict[str, Any] = {"n_images": len(lesions), "n_lesion_free_crops": len(negatives)}
    for key in ("dice", "iou", "precision", "recall", "hd95_px"):
        out[key] = _mean([r[key] for r in lesions])
    if lesions:
        out["dice_median"] = float(np.median([r["dice"] for r in lesions]))
        known = [r for r in lesions if r.get("malignant") is not None]
        scores = np.array([r["malignancy_probability"] for r in known], dtype=float)
        labels = np.array([r["malignant"] for r in known], dtype=int)
        out["malignancy_auc"] = roc_auc(scores, labels)
        out["malignancy_sensitivity"], out["malignancy_specificity"] = sensitivity_specificity(scores, labels)
        if all("network_malignancy_probability" in r for r in known):  # the network alone, before the combination
            out["network_malignancy_auc"] = roc_auc(np.array([r["network_malignancy_probability"] for r in known]), labels)
        classified = [r for r in known if r.get("classifier_malignancy_probability") is not None]
        if classified:  # the crop classifier alone, on the images where a lesion was found
            out["classifier_malignancy_auc"] = roc_auc(np.array([r["classifier_malignancy_probability"] for r in classified]),
                                                       np.array([r["malignant"] for r in classified], dtype=int))
            out["n_classifier"] = len(classified)
        out["n_malignant"] = int(labels.sum())
        if len(known) < len(lesions):
            out["n_malignancy_known"] = len(known)
    if lesions and negatives:
        present = np.array([r["lesion_present_probability"] for r in lesions + negatives])
        truth = np.array([1] * len(lesions) + [0] * len(negatives))
        out["lesion_present_auc"] = roc_auc(present, truth)
        threshold = float(negatives[0].get("lesion_present_threshold", 0.5))
        out["lesion_present_threshold"] = threshold
        out["lesion_present_sensitivity"], out["lesion_present_specificity"] = sensitivity_specificity(present, truth, threshold)
        out["lesion_free_crops_with_mask_fraction"] = float(np.mean([r["false_positive_area_px"] > 0 for r in negatives]))
    return out


def cross_validation_report(run_dir: str | Path) -> dict[str, Any]:
    """Per-fold and pooled summaries, and pooled breakdowns by scanner and BI-RADS, of every evaluated fold."""
    run_dir = Path(run_dir)
    per_fold, pooled = {}, []
    for fold in range(NUM_FOLDS):
        path = run_dir / f"fold_{fold}" / TEST_RESULTS
        if path.is_file():
            rows = json.loads(path.read_text(encoding="utf-8"))
            per_fold[fold] = summarize(rows)
            pooled.extend(rows)
    report: dict[str, Any] = {"folds_evaluated": sorted(per_fold), "per_fold": per_fold, "pooled": summarize(pooled) if pooled else {}}
    for key in ("device", "birads"):
        groups = sorted({r[key] for r in pooled if r["kind"] == "lesion" and key in r}, key=str)
        report[f"by_{key}"] = {("unknown" if g is None else str(g)): summarize([r for r in pooled if key in r and r[key] == g])
                               for g in groups}
    if per_fold:
        report["mean_of_folds"] = {k: _mean([s.get(k, math.nan) for s in per_fold.values()])
                                   for k in ("dice", "iou", "precision", "recall", "hd95_px", "malignancy_auc",
                                             "network_malignancy_auc", "classifier_malignancy_auc", "lesion_present_auc")}
    report["dataset_citation"] = CITATION
    return report
