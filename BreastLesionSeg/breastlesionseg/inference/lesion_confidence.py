"""Per-lesion confidence: a calibrated probability that a connected component is a true lesion.

The network's thresholded probability map gives connected components. Each one gets the features
of :mod:`breastlesionseg.metrics.component_features` (size, probability statistics, elongation /
linearity — vessels —, contact with the breast-region edge — chest wall, skin —, and kinetics), and
a small logistic model turns them into ``confidence = P(true lesion | features)``.

The model is fitted by ``scripts/calibrate_lesion_confidence.py`` on *validation* phantoms only (never
the held-out phantom seeds or families, never a real exam) and stored in the model card's
``lesion_confidence`` field as :class:`LesionConfidenceModel`. Components whose confidence reaches
``report_threshold`` are the reported lesions (``lesions.nii.gz``); the others are *candidates*
(``candidates.nii.gz``, ``metrics.json["candidates"]``), kept so a reader can promote one: nothing
the network found is thrown away. A card without a confidence model reports every component, as
before.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, ModelError
from ..metrics.component_features import (COMPONENT_FEATURE_NAMES, component_geometry_features,
                                          component_kinetic_features, kinetic_descriptor_features)

#: ridge penalty (on standardised features) of the logistic fit
DEFAULT_L2 = 1.0
#: fraction of the validation phantoms' true lesions (>= 20 mm3) the report threshold keeps reported
DEFAULT_KEEP_FRACTION = 0.95


@dataclass
class LesionConfidenceModel:
    """Logistic confidence model: ``sigmoid(intercept + sum_i coef_i (x_i - mean_i) / scale_i)``.

    Attributes:
        feature_names: feature names, a subset of ``COMPONENT_FEATURE_NAMES`` in model order.
        mean: per-feature mean of the fitting set (standardisation).
        scale: per-feature standard deviation of the fitting set (> 0).
        coef: logistic coefficients on the standardised features.
        intercept: logistic intercept.
        report_threshold: components with confidence >= this are reported as lesions (0..1).
        fitted_on: description of the fitting data (validation phantoms: seeds, configurations).
        fit_metrics: figures of the fit (positives, negatives, Brier score, AUC, ...).
    """

    feature_names: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    report_threshold: float
    fitted_on: str = ""
    fit_metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.feature_names)
        unknown = [f for f in self.feature_names if f not in COMPONENT_FEATURE_NAMES]
        if n == 0 or unknown:
            raise ModelError(f"lesion_confidence.feature_names must name features of {COMPONENT_FEATURE_NAMES}; "
                             f"unknown {unknown}" if unknown else "lesion_confidence.feature_names is empty")
        for name in ("mean", "scale", "coef"):
            values = getattr(self, name)
            if len(values) != n or not all(math.isfinite(float(v)) for v in values):
                raise ModelError(f"lesion_confidence.{name} must be {n} finite numbers, got {values!r}")
            setattr(self, name, [float(v) for v in values])
        if any(s <= 0 for s in self.scale):
            raise ModelError(f"lesion_confidence.scale must be positive, got {self.scale}")
        if not math.isfinite(float(self.intercept)):
            raise ModelError(f"lesion_confidence.intercept must be finite, got {self.intercept!r}")
        if not 0.0 <= float(self.report_threshold) <= 1.0:
            raise ModelError(f"lesion_confidence.report_threshold must be in 0..1, got {self.report_threshold!r}")
        self.feature_names = list(self.feature_names)
        self.intercept = float(self.intercept)
        self.report_threshold = float(self.report_threshold)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the model card's ``lesion_confidence`` field)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LesionConfidenceModel":
        """Inverse of :meth:`to_dict`; raises :class:`ModelError` on a malformed entry."""
        try:
            return cls(**data)
        except TypeError as exc:
            raise ModelError(f"model card lesion_confidence: {exc}") from exc

    @classmethod
    def from_card(cls, card: Any) -> "LesionConfidenceModel | None":
        """The card's confidence model, ``None`` when it has none (then every component is reported)."""
        data = getattr(card, "lesion_confidence", None) or getattr(card, "extra", {}).get("lesion_confidence")
        return cls.from_dict(data) if data else None

    def matrix(self, features: Sequence[dict[str, float]]) -> np.ndarray:
        """Standardised feature matrix (n, f) of per-component feature dicts."""
        x = np.array([[float(f[name]) for name in self.feature_names] for f in features], dtype=float)
        x = x.reshape(len(features), len(self.feature_names))
        return (x - np.asarray(self.mean)) / np.asarray(self.scale)

    def confidence(self, features: Sequence[dict[str, float]]) -> np.ndarray:
        """Confidence in [0, 1] of each component (shape (n,))."""
        if not features:
            return np.zeros(0)
        z = self.matrix(features) @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = DEFAULT_L2, iterations: int = 50) -> tuple[np.ndarray, float]:
    """Ridge logistic regression by Newton's method (IRLS) on standardised features.

    Args:
        x: (n, f) standardised features.
        y: (n,) 0/1 labels.
        l2: ridge penalty on the coefficients (not on the intercept).
        iterations: maximum Newton steps.

    Returns:
        ``(coef (f,), intercept)``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise InputError(f"fit_logistic: x must be (n, f) and y (n,), got {x.shape} and {y.shape}")
    if len(np.unique(y)) < 2:
        raise InputError("fit_logistic: the fitting set needs both true lesions and false components")
    a = np.hstack([np.ones((x.shape[0], 1)), x])
    w = np.zeros(a.shape[1])
    penalty = np.full(a.shape[1], float(l2))
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -40, 40)))
        grad = a.T @ (p - y) + penalty * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w[1:], float(w[0])


def fit_confidence_model(
    features: Sequence[dict[str, float]],
    is_lesion: Sequence[bool],
    report_threshold: float,
    fitted_on: str,
    feature_names: Sequence[str] = COMPONENT_FEATURE_NAMES,
    l2: float = DEFAULT_L2,
) -> LesionConfidenceModel:
    """Fit a :class:`LesionConfidenceModel` on labelled components (validation data only)."""
    x = np.array([[float(f[n]) for n in feature_names] for f in features], dtype=float)
    mean = x.mean(axis=0)
    scale = np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
    coef, intercept = fit_logistic((x - mean) / scale, np.asarray(is_lesion, dtype=float), l2)
    return LesionConfidenceModel(list(feature_names), mean.tolist(), scale.tolist(), coef.tolist(), intercept,
                                 report_threshold, fitted_on)


def choose_report_threshold(model: LesionConfidenceModel, rows: Sequence[dict[str, Any]],
                            min_keep_volume_mm3: float = 20.0, keep_fraction: float = DEFAULT_KEEP_FRACTION) -> float:
    """The highest threshold (on a 0.01 grid, at most 0.5) that still reports at least ``keep_fraction`` of the true
    components of at least ``min_keep_volume_mm3``.

    With many validation phantoms, keeping every true component would let the single hardest one (a lesion
    the network barely found) set the threshold; ``keep_fraction`` < 1 lets a few of them go to the candidates.

    Args:
        model: the fitted model.
        rows: labelled components (features, ``volume_mm3``, ``is_lesion``) of the validation phantoms.
        min_keep_volume_mm3: true components at least this large count.
        keep_fraction: fraction (0-1] of those that must stay reported.

    Raises:
        InputError: ``keep_fraction`` outside (0, 1].
    """
    if not 0.0 < keep_fraction <= 1.0:
        raise InputError(f"choose_report_threshold: keep_fraction must be in (0, 1], got {keep_fraction}")
    keep = [r for r in rows if r["is_lesion"] and r["volume_mm3"] >= min_keep_volume_mm3]
    if not keep:
        return 0.5
    confidence = np.sort(model.confidence(keep))
    may_miss = int(np.floor((1.0 - keep_fraction) * len(confidence) + 1e-9))
    return float(min(np.floor(confidence[may_miss] * 100.0) / 100.0, 0.5))


def confidence_fit_metrics(model: LesionConfidenceModel, rows: Sequence[dict[str, Any]], n_exams: int) -> dict:
    """Brier score, AUC, and false components per exam before / after the report threshold (fitting set)."""
    y = np.array([bool(r["is_lesion"]) for r in rows], dtype=float)
    p = model.confidence(rows)
    pos, neg = p[y == 1], p[y == 0]
    auc = None
    if len(pos) and len(neg):
        auc = float(np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :]))
    kept = p >= model.report_threshold
    return {"n_components": len(rows), "n_true": int(y.sum()), "n_false": int((1 - y).sum()), "n_exams": n_exams,
            "brier": float(np.mean((p - y) ** 2)) if len(rows) else None, "auc": auc,
            "false_per_exam_all": float((1 - y).sum() / max(n_exams, 1)),
            "false_per_exam_reported": float(((1 - y) * kept).sum() / max(n_exams, 1)),
            "true_reported_fraction": float((y * kept).sum() / max(y.sum(), 1))}


@dataclass
class ScoredComponents:
    """Components split into reported lesions and lower-confidence candidates (both on one grid).

    Attributes:
        lesion_labels: (z, y, x) uint16 reported lesions 1..N by decreasing volume.
        lesion_volumes_mm3: their volumes (non-increasing).
        lesion_confidence: their confidences (``None`` each without a confidence model).
        candidate_labels: (z, y, x) uint16 candidates 1..M by decreasing confidence; ``None`` without a
            confidence model (every component is then a lesion).
        candidates: one dict per candidate: ``id``, ``confidence``, ``volume_mm3`` and its features.
        lesion_features: the features of lesion 1..N (same order).
    """

    lesion_labels: np.ndarray
    lesion_volumes_mm3: list[float]
    lesion_confidence: list[float | None]
    candidate_labels: np.ndarray | None
    candidates: list[dict[str, Any]]
    lesion_features: list[dict[str, float]]


def component_features(
    labels_crop: np.ndarray,
    probability_crop: np.ndarray,
    breast_crop: np.ndarray | None,
    crop_geometry: Any,
    crop_start_zyx: Sequence[int],
    phases_full: Sequence[np.ndarray],
) -> dict[int, dict[str, float]]:
    """All :data:`COMPONENT_FEATURE_NAMES` of components 1..N of the crop (phases read on the full grid,
    the crop starting at full-grid index ``crop_start_zyx``)."""
    feats = component_geometry_features(labels_crop, probability_crop, breast_crop, crop_geometry)
    kinetics = component_kinetic_features(labels_crop, phases_full, crop_start_zyx)
    no_kinetics = {"early_enhancement_percent": 0.0, "late_change_percent": 0.0,
                   **kinetic_descriptor_features(0.0, 0.0)}
    return {label: {**values, **kinetics.get(label, no_kinetics)} for label, values in feats.items()}


def _relabel(labels: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Labels ``order[0] -> 1, order[1] -> 2, ...``; every other label -> 0 (uint16)."""
    lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, dtype=np.uint16)
    for new, old in enumerate(order, start=1):
        lut[old] = new
    return lut[labels]


def split_by_confidence(
    labels: np.ndarray,
    volumes_mm3: Sequence[float],
    features: dict[int, dict[str, float]],
    model: LesionConfidenceModel | None,
) -> ScoredComponents:
    """Score components 1..N and split them at the model's ``report_threshold``.

    Args:
        labels: (z, y, x) components 1..N by decreasing volume.
        volumes_mm3: volume of component 1..N.
        features: ``{label: features}`` of every component.
        model: the confidence model; ``None`` reports every component (confidence ``None``).

    Returns:
        The :class:`ScoredComponents` on the same grid as ``labels``.
    """
    n = len(volumes_mm3)
    ids = list(range(1, n + 1))
    if model is None:
        return ScoredComponents(np.asarray(labels, dtype=np.uint16), [float(v) for v in volumes_mm3], [None] * n,
                                None, [], [features.get(i, {}) for i in ids])
    conf = model.confidence([features[i] for i in ids])
    reported = [i for i in ids if conf[i - 1] >= model.report_threshold]
    hidden = sorted((i for i in ids if conf[i - 1] < model.report_threshold), key=lambda i: -conf[i - 1])
    candidates = [{"id": k, "confidence": float(conf[i - 1]), "volume_mm3": float(volumes_mm3[i - 1]),
                   **{name: float(v) for name, v in features[i].items()}}
                  for k, i in enumerate(hidden, start=1)]
    return ScoredComponents(
        lesion_labels=_relabel(labels, reported),
        lesion_volumes_mm3=[float(volumes_mm3[i - 1]) for i in reported],
        lesion_confidence=[float(conf[i - 1]) for i in reported],
        candidate_labels=_relabel(labels, hidden),
        candidates=candidates,
        lesion_features=[features[i] for i in reported],
    )


__all__ = ["LesionConfidenceModel", "ScoredComponents", "choose_report_threshold", "component_features",
           "confidence_fit_metrics", "fit_confidence_model",
           "fit_logistic", "split_by_confidence"]
