#!/usr/bin/env python
"""Which inference-side change finds the lesions missed in exams without fat suppression? (issue 17)

Runs the whole ``segment`` engine (every component kept, no confidence split) on the exams where the shipped model
misses lesions, with one change at a time, and records for every lesion whether a component touches it and the
highest lesion probability inside it:

* ``--grid-scale F`` — the network runs on a grid ``F`` times the model's training spacing (``F`` < 1: finer, so a
  small lesion covers more voxels; the card field ``inference_spacing_mm`` does the same in the product);
* ``--denoise gaussian:SIGMA_MM`` / ``--denoise diffusion:ITERATIONS`` — every phase is smoothed before the network
  (SimpleITK ``CurvatureAnisotropicDiffusion``, edge-preserving, or a Gaussian of ``SIGMA_MM``); a check of whether
  the held-out family's noise, above the training range, is what hides its lesions.

Sets (``--sets``): ``heldout`` — family ``heldout-nonfatsat-noisy``, seeds 0-11; ``paired`` — family
``training-nonfatsat``, seeds 2100-2119 (inside the training ranges, without fat suppression); ``training`` —
family ``training``, seeds 2100-2111.

Usage::

    .venv/bin/python benchmarks/probe_small_lesion_detection.py --grid-scale 0.75 --denoise diffusion:5 \\
        --sets heldout paired --jsonl benchmarks/output/small_lesion_detection.jsonl
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "BreastLesionSeg"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_generalisation import probe_engine  # noqa: E402
from breastlesionseg.exam import DCEExam  # noqa: E402
from breastlesionseg.metrics.component_truth import MIN_SCORED_LESION_MM3, is_small_lesion  # noqa: E402
from breastlesionseg.phantom import generate_phantom  # noqa: E402
from breastlesionseg.phantom.randomisation import draw_config  # noqa: E402

log = logging.getLogger("probe_small_lesion_detection")
SETS = {"heldout": ("heldout-nonfatsat-noisy", range(0, 12)),
        "paired": ("training-nonfatsat", range(2100, 2120)),
        "training": ("training", range(2100, 2112))}
DENOISERS = ("none", "gaussian", "diffusion")


def parse_denoise(text: str) -> tuple[str, float]:
    """``none``, ``gaussian:SIGMA_MM`` or ``diffusion:ITERATIONS`` -> (kind, value)."""
    kind, _, value = text.partition(":")
    if kind not in DENOISERS or (kind != "none" and not value):
        raise argparse.ArgumentTypeError(f"--denoise {text!r}: expected none, gaussian:SIGMA_MM or "
                                         "diffusion:ITERATIONS")
    try:
        number = float(value) if value else 0.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"--denoise {text!r}: {value!r} is not a number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"--denoise {text!r}: the value must be >= 0")
    return kind, number


def denoise_array(array: np.ndarray, spacing_xyz: tuple[float, float, float], kind: str, value: float) -> np.ndarray:
    """One phase (z, y, x) smoothed by ``kind`` (:data:`DENOISERS`), float32."""
    array = np.asarray(array, dtype=np.float32)
    if kind == "gaussian" and value > 0:
        return ndimage.gaussian_filter(array, value / np.asarray(spacing_xyz[::-1])).astype(np.float32)
    if kind == "diffusion" and value >= 1:
        image = sitk.GetImageFromArray(array)
        image.SetSpacing([float(s) for s in spacing_xyz])
        step = 0.0625 * min(spacing_xyz)  # below the stable limit of a 3D curvature diffusion
        return sitk.GetArrayFromImage(sitk.CurvatureAnisotropicDiffusion(image, step, 1.0, 1, int(value)))
    return array


def denoised(exam: DCEExam, kind: str, value: float) -> DCEExam:
    """``exam`` with every phase smoothed (the same exam when ``kind`` is ``none``)."""
    if kind == "none":
        return exam
    spacing = tuple(exam.geometry.spacing)
    return dataclasses.replace(exam, phases=[p.with_array(denoise_array(p.array, spacing, kind, value))
                                             for p in exam.phases])


def lesion_records(engine: Any, family: str, seed: int, denoise: tuple[str, float]) -> dict[str, Any]:
    """Per lesion (>= 20 mm3): volume, found (a component touches it), highest probability; false components."""
    phantom = generate_phantom(draw_config(family, seed))
    result = engine.run(denoised(phantom.exam, *denoise))
    probability = np.asarray(result.probability.array)
    truth = np.asarray(phantom.lesion_labels.array)
    components = np.asarray(result.candidate_labels.array)
    voxel_mm3 = phantom.exam.geometry.voxel_volume_mm3
    lesions = []
    for index in np.unique(truth[truth > 0]):
        inside = truth == index
        volume = float(inside.sum() * voxel_mm3)
        if volume >= MIN_SCORED_LESION_MM3:
            lesions.append({"volume_mm3": round(volume, 1), "found": bool((components[inside] > 0).any()),
                            "probability_max": round(float(probability[inside].max()), 3)})
    false = sum(not (truth[components == i] > 0).any() for i in np.unique(components[components > 0]))
    return {"family": family, "seed": seed, "lesions": lesions, "false_components": int(false)}


def summary(records: list[dict]) -> dict[str, Any]:
    """Lesions found (all >= 20 mm3, and 20-300 mm3) and false components per exam, per family."""
    out = {}
    for family in dict.fromkeys(r["family"] for r in records):
        rows = [r for r in records if r["family"] == family]
        lesions = [les for r in rows for les in r["lesions"]]
        small = [les for les in lesions if is_small_lesion(les["volume_mm3"])]
        out[family] = {"exams": len(rows), "lesions": len(lesions), "found": sum(x["found"] for x in lesions),
                       "small": len(small), "small_found": sum(x["found"] for x in small),
                       "false_components_per_exam": float(np.mean([r["false_components"] for r in rows]))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "models" / "mm3dunet-phantom-demo"))
    parser.add_argument("--grid-scale", type=float, default=1.0, help="network grid / training spacing")
    parser.add_argument("--denoise", type=parse_denoise, default=("none", 0.0))
    parser.add_argument("--sets", nargs="+", choices=sorted(SETS), default=["heldout", "paired"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jsonl", type=Path, default=REPO / "benchmarks" / "output" / "small_lesion_detection.jsonl")
    args = parser.parse_args(argv)
    if not 0.3 <= args.grid_scale <= 2.0:
        parser.error(f"--grid-scale {args.grid_scale}: expected 0.3-2.0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    engine = probe_engine(args.model, args.threads)
    engine.config.save_probability = True
    spacing = engine.card.run_spacing_mm()
    engine.card.inference_spacing_mm = [float(s) * args.grid_scale for s in spacing]
    args.jsonl.parent.mkdir(parents=True, exist_ok=True)
    records = []
    with open(args.jsonl, "w", encoding="utf-8") as out:
        for name in args.sets:
            family, seeds = SETS[name]
            for seed in seeds:
                records.append(lesion_records(engine, family, seed, args.denoise))
                out.write(json.dumps(records[-1]) + "\n")
                out.flush()
    for family, s in summary(records).items():
        log.info("%s (grid x%.2f, denoise %s): found %d of %d lesions >= 20 mm3, %d of %d small (20-300 mm3); "
                 "%.2f false components per exam", family, args.grid_scale, ":".join(map(str, args.denoise)),
                 s["found"], s["lesions"], s["small_found"], s["small"], s["false_components_per_exam"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
