#!/usr/bin/env python
"""Does the lesion network fit the small lesions of its own training set? (issue 17)

Draws training-family phantoms exactly as ``scripts/train_randomised_model.sh`` put them in the shipped model's
training set (family ``training``, seeds 3000-3511, 1-3 lesions each), runs the whole ``segment`` engine with the
model's card settings and, for every lesion of 20-300 mm3, records the highest lesion probability inside it.
A lesion counts as fitted when that maximum reaches the card's threshold. Exams with and without fat suppression
are counted separately (the family draws fat suppression for 80 % of the exams), up to ``--lesions`` of each.

If the network misses small lesions it was trained on, more data of the same kind cannot be expected to bring
them back on new exams; the limit is then the network or its training.

Writes ``benchmarks/output/small_lesion_fit.json`` (or ``--json``) and logs a summary.

Usage::

    .venv/bin/python benchmarks/probe_small_lesion_fit.py [--model models/mm3dunet-phantom-demo] [--lesions 14]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "BreastLesionSeg"))

from breastlesionseg.inference import InferenceConfig, SegmentationEngine  # noqa: E402
from breastlesionseg.io.atomic import write_text_atomic  # noqa: E402
from breastlesionseg.metrics.component_truth import is_small_lesion  # noqa: E402
from breastlesionseg.phantom import generate_phantom  # noqa: E402
from breastlesionseg.phantom.randomisation import draw_config  # noqa: E402
from breastlesionseg.phantom.seeds import parse_seeds, seeds_argument  # noqa: E402

log = logging.getLogger("probe_small_lesion_fit")
CONDITIONS = ("fat-suppressed", "not fat-suppressed")


def small_lesion_maxima(engine: SegmentationEngine, seed: int, condition: str) -> list[dict]:
    """The 20-300 mm3 lesions of training phantom ``seed`` with their highest lesion probability; empty when the
    phantom's fat suppression is not ``condition``."""
    config = dataclasses.replace(draw_config("training", seed), n_lesions=(1, 3))
    if config.fat_saturated != (condition == "fat-suppressed"):
        return []
    phantom = generate_phantom(config)
    truth = np.asarray(phantom.lesion_labels.array)
    voxel_mm3 = phantom.exam.geometry.voxel_volume_mm3
    lesions = [(index, float((truth == index).sum() * voxel_mm3)) for index in np.unique(truth[truth > 0])]
    lesions = [(i, v) for i, v in lesions if is_small_lesion(v)]
    if not lesions:
        return []
    probability = np.asarray(engine.run(phantom.exam).probability.array)
    return [{"seed": seed, "lesion": int(i), "volume_mm3": round(v, 1),
             "probability_max": round(float(probability[truth == i].max()), 3)} for i, v in lesions]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(REPO / "models" / "mm3dunet-phantom-demo"))
    parser.add_argument("--seeds", type=seeds_argument, default=parse_seeds("3000-3511"),
                        help="training-family seeds of the model's training set (default 3000-3511)")
    parser.add_argument("--lesions", type=int, default=14, help="small lesions per condition (default 14)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "output" / "small_lesion_fit.json")
    args = parser.parse_args(argv)
    if args.lesions < 1:
        parser.error(f"--lesions must be >= 1, got {args.lesions}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    engine = SegmentationEngine(InferenceConfig(model=args.model, device="cpu", num_threads=args.threads,
                                                save_probability=True))
    result = {"model": args.model, "threshold": engine.threshold, "conditions": {}}
    for condition in CONDITIONS:
        rows: list[dict] = []
        for seed in args.seeds:
            rows += small_lesion_maxima(engine, seed, condition)
            if len(rows) >= args.lesions:
                break
        fitted = sum(r["probability_max"] >= engine.threshold for r in rows)
        result["conditions"][condition] = {"lesions": rows, "fitted": fitted, "count": len(rows)}
        log.info("%s: %d of %d small training lesions reach the threshold %.2f (seeds %d-%d)", condition, fitted,
                 len(rows), engine.threshold, rows[0]["seed"] if rows else -1, rows[-1]["seed"] if rows else -1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, json.dumps(result, indent=1), overwrite=True)
    log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
