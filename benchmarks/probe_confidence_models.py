#!/usr/bin/env python
"""Would another kind of per-lesion confidence model report the held-out families' lesions with fewer false ones?
(issue 17)

Reads the component rows of a ``bench_generalisation.py`` run (``cases.jsonl``: every component of every exam, with
its features and its match to the truth), fits each confidence model on the ``validation`` section only (the
training-family phantoms, as ``--fit-confidence`` does), chooses its report threshold by the shipped rule
(``choose_report_threshold``: the highest threshold that keeps 95 % of the true validation components >= 20 mm3,
at most 0.5) and scores every section with it, beside the ceiling (the true components alone). No network runs.

Models:

* ``logistic`` — the shipped ridge logistic model (``fit_confidence_model``);
* ``quadratic`` — the same fit on the standardised features, their squares and pairwise products;
* ``mlp`` / ``boosting`` — scikit-learn's ``MLPClassifier`` (16 hidden units) and ``GradientBoostingClassifier``
  (depth 2, 200 trees), only when scikit-learn is installed (it is not a dependency of the package; a probe of
  whether a non-linear model is worth adding).

Usage::

    .venv/bin/python benchmarks/probe_confidence_models.py benchmarks/output/generalisation/<model id>/cases.jsonl \\
        [--models logistic quadratic mlp boosting] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "BreastLesionSeg"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_generalisation import summarise_section  # noqa: E402
from breastlesionseg.inference.lesion_confidence import (choose_report_threshold, fit_confidence_model,  # noqa: E402
                                                         fit_logistic)
from breastlesionseg.metrics.component_features import COMPONENT_FEATURE_NAMES  # noqa: E402
from breastlesionseg.metrics.component_rows import read_component_cases  # noqa: E402

log = logging.getLogger("probe_confidence_models")
MODELS = ("logistic", "quadratic", "mlp", "boosting")


class ScoredModel:
    """A fitted confidence function with a report threshold (what ``summarise_section`` needs)."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray]):
        self.predict = predict
        self.report_threshold = 0.5

    def confidence(self, rows: Sequence[dict]) -> np.ndarray:
        """Confidence in [0, 1] of each row (its :data:`COMPONENT_FEATURE_NAMES`)."""
        return self.predict(feature_matrix(rows)) if rows else np.zeros(0)


def feature_matrix(rows: Sequence[dict]) -> np.ndarray:
    """(n, f) features of ``rows`` in :data:`COMPONENT_FEATURE_NAMES` order."""
    return np.array([[float(r[n]) for n in COMPONENT_FEATURE_NAMES] for r in rows], dtype=float)


def quadratic_terms(z: np.ndarray) -> np.ndarray:
    """Standardised features (n, f) -> the features, their squares and their pairwise products (n, f(f+3)/2)."""
    i, j = np.triu_indices(z.shape[1])
    return np.hstack([z, z[:, i] * z[:, j]])


def fit_model(name: str, rows: list[dict]) -> Callable[[np.ndarray], np.ndarray]:
    """Fit confidence model ``name`` (:data:`MODELS`) on labelled validation rows; returns features -> confidence."""
    x, y = feature_matrix(rows), np.array([bool(r["is_lesion"]) for r in rows], dtype=float)
    if name == "logistic":
        model = fit_confidence_model(rows, y.astype(bool), 0.5, "probe")
        return lambda f: model.confidence([dict(zip(COMPONENT_FEATURE_NAMES, v)) for v in f])
    mean, scale = x.mean(axis=0), np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
    if name == "quadratic":
        q = quadratic_terms((x - mean) / scale)
        q_mean, q_scale = q.mean(axis=0), np.where(q.std(axis=0) > 1e-9, q.std(axis=0), 1.0)
        coef, intercept = fit_logistic((q - q_mean) / q_scale, y, l2=10.0)
        return lambda f: 1.0 / (1.0 + np.exp(-np.clip(
            ((quadratic_terms((f - mean) / scale) - q_mean) / q_scale) @ coef + intercept, -40, 40)))
    try:
        from sklearn.ensemble import GradientBoostingClassifier
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        raise SystemExit(f"--models {name} needs scikit-learn (not a dependency): pip install scikit-learn") from None
    clf = (MLPClassifier((16,), alpha=1e-2, max_iter=3000, random_state=0) if name == "mlp" else
           GradientBoostingClassifier(max_depth=2, n_estimators=200, learning_rate=0.05, subsample=0.8,
                                      random_state=0))
    clf.fit((x - mean) / scale, y.astype(int))
    return lambda f: clf.predict_proba((f - mean) / scale)[:, 1]


def probe(cases: list[dict], names: Sequence[str]) -> dict[str, Any]:
    """``{model: {"report_threshold": t, "sections": {section: summarise_section figures}}}``."""
    validation = [r for c in cases if c["section"] == "validation" for r in c["rows"]]
    if not validation:
        raise SystemExit("the cases hold no 'validation' section to fit on")
    sections: dict[str, list[dict]] = {}
    for c in cases:
        if c["section"] != "duke":
            sections.setdefault(c["section"], []).append(c)
    out = {}
    for name in names:
        model = ScoredModel(fit_model(name, validation))
        model.report_threshold = choose_report_threshold(model, validation)
        out[name] = {"report_threshold": model.report_threshold,
                     "sections": {k: summarise_section(v, model) for k, v in sections.items()}}
    return out


def markdown(result: dict[str, Any]) -> str:
    """Per section: reported Dice / sensitivity >= 20 mm3 / FP per exam of each model, and the ceiling."""
    f = lambda v, fmt: "-" if v is None else fmt.format(v)  # noqa: E731
    names = list(result)
    first = result[names[0]]["sections"]
    lines = ["| set | " + " | ".join(f"{n} (threshold {result[n]['report_threshold']:.2f})" for n in names)
             + " | ceiling |", "|---" * (len(names) + 2) + "|"]
    for section in first:
        cells = []
        for n in names + ["ceiling"]:
            s = result[names[0] if n == "ceiling" else n]["sections"][section]["ceiling" if n == "ceiling" else
                                                                               "reported"]
            cells.append(f"{f(s['dice'], '{:.3f}')} / {f(s['sensitivity'], '{:.2f}')} / {s['fp_per_exam']:.2f}")
        lines.append(f"| {section} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", type=Path, help="cases.jsonl of a bench_generalisation.py run")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["logistic", "quadratic"])
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = probe(read_component_cases(args.cases), args.models)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
