"""Malignancy from the network and the lesion's BI-RADS-like descriptors: one logistic model in the card.

``logit = network_weight * network_logit + classifier_weight * classifier_logit
         + sum_i weights[i] * (d_i - mean[i]) / scale[i] + intercept``

where ``network_logit`` is the logit of the network's malignancy probability, ``classifier_logit`` the
logit of the model's lesion-crop classifier (:mod:`.crop_classifier`; the term is absent, weight 0, for a
model without one) and ``d_i`` the descriptors of :mod:`.lesion_descriptors` of the predicted lesion. It is fitted in two stages, so that the network's
own (over-confident) outputs on its training images are never used:

1. a descriptors-only logistic model on the fold's **training** images (descriptors of the masks the
   network predicts there; many images, no network output involved);
2. a logistic model of (network logit, classifier logit, stage-1 score) on the fold's **validation** images.

The two linear stages collapse into the single linear model above. The coefficients are plain numbers in
the model card (JSON, no pickled objects).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelError
from ..inference.lesion_confidence import fit_logistic
from .lesion_descriptors import DESCRIPTOR_NAMES

#: L2 penalty of stage 1 (descriptors) and stage 2 (network logit + descriptor score), on standardised inputs
STAGE1_L2 = 1.0
STAGE2_L2 = 0.1
#: fewest images of each class (benign, malignant) a stage needs
MIN_IMAGES_PER_CLASS = 10


def logit(probability: np.ndarray | float) -> np.ndarray:
    """Logit of probabilities clipped to [1e-6, 1 - 1e-6]."""
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def sigmoid(z: float) -> float:
    """The probability of logit ``z`` (the inverse of :func:`logit`; no overflow for large ``|z|``)."""
    return 0.5 * (1.0 + math.tanh(0.5 * float(z)))


@dataclass
class MalignancyModel:
    """The fitted logistic model (see the module docstring for the formula).

    Attributes:
        descriptor_names: names of the descriptors used, in order (a subset of ``DESCRIPTOR_NAMES``).
        mean, scale: standardisation of each descriptor (from the stage-1 training images).
        weights: coefficient of each standardised descriptor.
        network_weight: coefficient of the network's malignancy logit.
        classifier_weight: coefficient of the crop classifier's logit (0: the model has no classifier).
        intercept: constant term.
        fitted_on: which images fitted each stage, in words.
    """

    descriptor_names: list[str]
    mean: list[float]
    scale: list[float]
    weights: list[float]
    network_weight: float
    intercept: float
    fitted_on: str = ""
    classifier_weight: float = 0.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.descriptor_names) - set(DESCRIPTOR_NAMES))
        if unknown:
            raise ModelError(f"malignancy model: unknown descriptor(s) {unknown}; known: {list(DESCRIPTOR_NAMES)}")
        sizes = {len(self.descriptor_names), len(self.mean), len(self.scale), len(self.weights)}
        if len(sizes) != 1:
            raise ModelError("malignancy model: descriptor_names, mean, scale and weights must have one entry each")
        numbers = [*self.mean, *self.scale, *self.weights, self.network_weight, self.intercept, self.classifier_weight]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers) or min(self.scale, default=1) <= 0:
            raise ModelError("malignancy model: coefficients must be finite numbers and scales positive")

    def probability(self, network_probability: float, descriptors: dict[str, float],
                    classifier_logit: float | None = None) -> float:
        """Malignancy probability of one lesion from the network's probability, its descriptors and (for a model
        with a crop classifier) the classifier's logit.

        Raises:
            ModelError: the model weighs a classifier logit and none was given.
        """
        if self.classifier_weight and classifier_logit is None:
            raise ModelError("malignancy model: fitted with a crop-classifier logit, but none was given")
        values = np.array([descriptors[name] for name in self.descriptor_names], dtype=np.float64)
        standardised = (values - np.array(self.mean)) / np.array(self.scale)
        z = self.network_weight * float(logit(network_probability)) + float(standardised @ np.array(self.weights)) + self.intercept
        if self.classifier_weight:
            z += self.classifier_weight * float(classifier_logit)
        return sigmoid(z)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the card's ``malignancy_model`` field)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "MalignancyModel":
        """Inverse of :meth:`to_dict` (raises ModelError on a missing, unknown or invalid field)."""
        try:
            return cls(**values)
        except TypeError as exc:
            raise ModelError(f"malignancy model: {exc}") from exc


def _check_classes(labels: np.ndarray, stage: str) -> None:
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=2)
    if counts.min() < MIN_IMAGES_PER_CLASS:
        raise ModelError(f"malignancy model: {stage} has {counts[0]} benign and {counts[1]} malignant images; "
                         f"at least {MIN_IMAGES_PER_CLASS} of each are needed")


def fit_malignancy_model(train_descriptors: np.ndarray, train_labels: np.ndarray, val_network_probability: np.ndarray,
                         val_descriptors: np.ndarray, val_labels: np.ndarray, fitted_on: str,
                         val_classifier_logit: np.ndarray | None = None) -> MalignancyModel:
    """Fit the two stages (see the module docstring).

    Args:
        train_descriptors: (N_train, len(DESCRIPTOR_NAMES)) descriptors of the training images' predicted lesions.
        train_labels: (N_train,) 1 = malignant.
        val_network_probability: (N_val,) the network's malignancy probability on the validation images.
        val_descriptors: (N_val, len(DESCRIPTOR_NAMES)) their descriptors.
        val_labels: (N_val,) 1 = malignant.
        fitted_on: description of the images, stored in the model.
        val_classifier_logit: (N_val,) the crop classifier's logit on the validation images (None: no classifier).
    Raises:
        ModelError: a stage has fewer than :data:`MIN_IMAGES_PER_CLASS` images of a class.
    """
    _check_classes(train_labels, "stage 1 (training images)")
    _check_classes(val_labels, "stage 2 (validation images)")
    mean, scale = train_descriptors.mean(axis=0), train_descriptors.std(axis=0) + 1e-9
    shape_weights, shape_intercept = fit_logistic((train_descriptors - mean) / scale, train_labels, STAGE1_L2)
    val_score = ((val_descriptors - mean) / scale) @ shape_weights + shape_intercept
    columns = [logit(val_network_probability), val_score]
    if val_classifier_logit is not None:
        columns.append(np.asarray(val_classifier_logit, dtype=np.float64))
    weights, intercept = fit_logistic(np.stack(columns, axis=1), val_labels, STAGE2_L2)
    network_weight, score_weight = weights[0], weights[1]
    classifier_weight = float(weights[2]) if val_classifier_logit is not None else 0.0
    return MalignancyModel(descriptor_names=list(DESCRIPTOR_NAMES), mean=mean.tolist(), scale=scale.tolist(),
                           weights=(score_weight * shape_weights).tolist(), network_weight=float(network_weight),
                           intercept=float(score_weight * shape_intercept + intercept), fitted_on=fitted_on,
                           classifier_weight=classifier_weight)
