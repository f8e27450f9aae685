"""Fit a fold's malignancy model (:mod:`.malignancy_model`) on its training and validation images, never its test images.

Each image goes through :func:`predict_image` (the product path, without a malignancy model), and the
descriptors of the lesion it predicts (and, for a fold with a crop classifier, the classifier's logit) are
computed as the product will compute them. Images without a
predicted lesion or of unknown pathology are left out. Stored as ``fold_<k>/malignancy_model.json``:
``{"malignancy_model": {...} | null, "reason": "..."}`` (null when there were too few images of a class;
the fold's model then uses the network's probability alone).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..imaging2d.image_io import read_image_2d
from ..imaging2d.intensity import scale_to_unit
from ..io.atomic import write_text_atomic
from .lesion_descriptors import DESCRIPTOR_NAMES, describe_lesion
from .malignancy_model import fit_malignancy_model, logit
from .predict import predict_image
from .train import run_split

log = logging.getLogger(__name__)

MALIGNANCY_MODEL_FILE = "malignancy_model.json"


def descriptor_table(model: Any, records: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(descriptors (N, D), network malignancy probability (N,), malignant 0/1 (N,), crop-classifier logit (N,)
    or None without a classifier) of the records of known pathology whose predicted lesion is not empty."""
    rows, probabilities, labels, classifier_logits = [], [], [], []
    for record in records:
        if record.malignant is None:
            continue
        pixels = read_image_2d(record.image_path).pixels
        result = predict_image(pixels, model, with_heat_map=False)
        if not result.mask.any():
            continue
        descriptors = describe_lesion(scale_to_unit(pixels), result.mask)
        rows.append([descriptors[name] for name in DESCRIPTOR_NAMES])
        probabilities.append(result.malignancy_probability)
        labels.append(int(bool(record.malignant)))
        if result.classifier_malignancy_probability is not None:
            classifier_logits.append(float(logit(result.classifier_malignancy_probability)))
    classifier = np.array(classifier_logits) if model.crop_classifier is not None else None
    return (np.array(rows, dtype=np.float64).reshape(-1, len(DESCRIPTOR_NAMES)), np.array(probabilities),
            np.array(labels), classifier)


def fit_fold_malignancy_model(data_root: str | Path, fold_dir: Path, fold: int, model: Any) -> dict[str, Any] | None:
    """Fit and store the fold's malignancy model; returns its dictionary (None when it could not be fitted).

    Args:
        data_root: the dataset folder.
        fold_dir: the fold's run folder.
        fold: fold number.
        model: the fold's :class:`UltrasoundModel` (its card must not hold a malignancy model yet).
    """
    if model.card.malignancy_model:
        raise ValueError("fit_fold_malignancy_model needs the fold's model without a malignancy model")
    split = run_split(data_root, fold_dir, fold)
    # stage 1 uses the descriptors only: the crop classifiers need not run on the training images
    train_descriptors, _, train_labels, _ = descriptor_table(model.without(crop_classifier=True), split["train"])
    val_descriptors, val_probability, val_labels, val_classifier = descriptor_table(model, split["val"])
    fitted_on = (f"stage 1: {len(train_labels)} training images of fold {fold}, stage 2: {len(val_labels)} "
                 f"validation images of fold {fold} (known pathology, predicted lesion not empty)")
    try:
        fitted = fit_malignancy_model(train_descriptors, train_labels, val_probability, val_descriptors, val_labels,
                                      fitted_on, val_classifier).to_dict()
        reason = fitted_on
    except ModelError as exc:
        log.warning("fold %d: no malignancy model, the network's probability is used alone: %s", fold, exc)
        fitted, reason = None, str(exc)
    if fitted:
        log.info("fold %d: malignancy model fitted (%s); network weight %.3f", fold, fitted_on, fitted["network_weight"])
    payload = {"malignancy_model": fitted, "reason": reason, **_classifier_key(model.card.crop_classifier or None)}
    write_text_atomic(fold_dir / MALIGNANCY_MODEL_FILE, json.dumps(payload, indent=1), overwrite=True)
    return fitted


def _classifier_key(spec: dict[str, Any] | None) -> dict[str, Any]:
    """What of a ``crop_classifier`` field the fitted malignancy model depends on (each member's weights and
    whether it averages with the mirror image)."""
    from .crop_classifier import member_specs, uses_mirror

    members = member_specs(spec) if spec else []
    return {"crop_classifier_sha256": [member["weights_sha256"] for member in members] or None,
            "crop_classifier_mirror": [uses_mirror(member) for member in members] or None}


def malignancy_model_current(fold_dir: Path) -> bool:
    """Whether the fold's stored malignancy model was fitted with the fold's current crop classifiers (their weights
    and mirror setting; or, like the fold, without any); False when none is stored."""
    from .evaluate import fold_classifier

    path = fold_dir / MALIGNANCY_MODEL_FILE
    if not path.is_file():
        return False
    stored = json.loads(path.read_text(encoding="utf-8"))
    return all(stored.get(key) == value for key, value in _classifier_key(fold_classifier(fold_dir)).items())


def read_fold_malignancy_model(fold_dir: Path) -> dict[str, Any] | None:
    """The stored malignancy model of a fold (None when not fitted or not fittable)."""
    path = fold_dir / MALIGNANCY_MODEL_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("malignancy_model")
