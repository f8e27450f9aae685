#!/usr/bin/env python
"""Fit the per-lesion confidence model of a lesion model on VALIDATION phantoms and store it in its card.

For every validation seed, a phantom of the ``training`` family (``breastlesionseg.phantom.randomisation``;
never a held-out family, never the held-out seeds 0-19, never a real exam) is segmented with the model's
own threshold and minimum volume; every connected component is kept, with its features
(``breastlesionseg.metrics.component_features``) and its truth: a true lesion when at least
``--min-overlap`` of its voxels lie in a ground-truth lesion. A ridge logistic model is fitted on those
components; the report threshold is the highest confidence (on a 0.01 grid, at most 0.5) that still
reports ``--keep-fraction`` (default 95 %) of the true components of >= 20 mm3 found on the validation phantoms
(or ``--threshold``).

Example::

    python scripts/calibrate_lesion_confidence.py models/mm3dunet-phantom-demo --seeds 2000-2029 \\
        --json benchmarks/output/lesion_confidence.json --update-card
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from breastlesionseg.errors import InputError
from breastlesionseg.inference import InferenceConfig, SegmentationEngine
from breastlesionseg.inference.lesion_confidence import (DEFAULT_KEEP_FRACTION, LesionConfidenceModel,
                                                         choose_report_threshold,
                                                         confidence_fit_metrics, fit_confidence_model)
from breastlesionseg.metrics.component_features import COMPONENT_FEATURE_NAMES
from breastlesionseg.metrics.component_rows import read_component_rows
from breastlesionseg.phantom import generate_phantom
from breastlesionseg.phantom.randomisation import FAMILIES, draw_config
from breastlesionseg.phantom.seeds import parse_seeds, seeds_argument

log = logging.getLogger("calibrate_lesion_confidence")
#: held-out evaluation seeds of the demo model, never used here
EVAL_SEEDS = range(0, 20)


def collect_components(engine: SegmentationEngine, family: str, seeds: list[int], min_overlap: float) -> list[dict]:
    """Segment each validation phantom; one row per component: seed, features, volume, is_lesion."""
    # a neutral model with report threshold 1: every component comes back as a candidate with its features
    probe = LesionConfidenceModel([COMPONENT_FEATURE_NAMES[0]], [0.0], [1.0], [0.0], 0.0, 1.0, "probe")
    engine.card.lesion_confidence = probe.to_dict()
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        phantom = generate_phantom(draw_config(family, seed))
        result = engine.run(phantom.exam)
        cand = np.asarray(result.candidate_labels.array)
        truth = np.asarray(phantom.lesion_labels.array) > 0
        for c in result.candidates:
            comp = cand == c["id"]
            overlap = float(np.count_nonzero(comp & truth)) / max(int(np.count_nonzero(comp)), 1)
            rows.append({"seed": seed, "volume_mm3": c["volume_mm3"], "overlap_fraction": overlap,
                         "is_lesion": overlap >= min_overlap, **{k: c[k] for k in COMPONENT_FEATURE_NAMES}})
        log.info("seed %d: %d components (%d true) in %.1f s", seed, len(result.candidates),
                 sum(r["is_lesion"] for r in rows if r["seed"] == seed), time.perf_counter() - t0)
    return rows


def update_card(folder: Path, model: LesionConfidenceModel) -> None:
    """Write the confidence model into ``folder``'s model card (atomically)."""
    from breastlesionseg.io.atomic import write_text_atomic
    from breastlesionseg.nn.model_card import ModelCard

    card_path = Path(folder) / "model_card.json"
    card = ModelCard.from_dict(json.loads(card_path.read_text(encoding="utf-8")))
    card.lesion_confidence = model.to_dict()
    card.validate()
    write_text_atomic(card_path, card.to_json(), overwrite=True)
    log.info("updated %s", card_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="model folder (model_card.json + weights)")
    parser.add_argument("--seeds", type=seeds_argument, default=parse_seeds("2000-2029"), help="validation seeds")
    parser.add_argument("--family", default="training", help="phantom family of the validation phantoms")
    parser.add_argument("--min-overlap", type=float, default=0.1, help="true lesion: this fraction in the truth")
    parser.add_argument("--threshold", type=float, default=None, help="report threshold (default: chosen)")
    parser.add_argument("--keep-fraction", type=float, default=DEFAULT_KEEP_FRACTION,
                        help="fraction of the true validation components >= 20 mm3 the chosen threshold keeps reported")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=Path, default=None,
                        help="reuse the component rows of an earlier --json, or the validation cases of "
                             "bench_generalisation.py (cases.jsonl)")
    parser.add_argument("--json", type=Path, default=None, help="write rows, model and figures here")
    parser.add_argument("--update-card", action="store_true", help="store the model in the model card")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.family not in FAMILIES:
        parser.error(f"--family {args.family!r} is not a phantom family (one of {sorted(FAMILIES)})")
    if set(args.seeds) & set(EVAL_SEEDS) or FAMILIES[args.family].heldout:
        parser.error("held-out seeds 0-19 and held-out families are never used for calibration")
    if args.rows:
        try:
            rows = read_component_rows(args.rows, section="validation", seeds=args.seeds)
        except InputError as exc:
            parser.error(f"--rows: {exc}")
        if not rows:
            parser.error(f"--rows '{args.rows}' holds no validation component rows of seeds "
                         f"{args.seeds[0]}-{args.seeds[-1]}")
    else:
        engine = SegmentationEngine(InferenceConfig(model=str(args.model), device="cpu", num_threads=args.threads))
        rows = collect_components(engine, args.family, args.seeds, args.min_overlap)
    fitted_on = (f"{len(args.seeds)} validation phantoms, family '{args.family}', seeds "
                 f"{args.seeds[0]}-{args.seeds[-1]} (scripts/calibrate_lesion_confidence.py)")
    model = fit_confidence_model(rows, [r["is_lesion"] for r in rows], 0.5, fitted_on)
    model.report_threshold = (args.threshold if args.threshold is not None
                              else choose_report_threshold(model, rows, keep_fraction=args.keep_fraction))
    model.fit_metrics = confidence_fit_metrics(model, rows, len(args.seeds))
    print(json.dumps({"report_threshold": model.report_threshold, **model.fit_metrics}, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": model.to_dict(), "rows": rows}, indent=1))
    if args.update_card:
        update_card(args.model, model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
