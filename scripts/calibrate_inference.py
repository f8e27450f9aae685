#!/usr/bin/env python
"""Choose a lesion model's inference settings (window, grid spacing, threshold, minimum lesion volume) on
VALIDATION phantoms, never on the held-out evaluation seeds (0-19) nor the training seeds.

For every validation seed, candidate sliding-window size and candidate grid spacing (``--spacing-scales``: factors
of the training spacing; below 1 the network runs on a finer grid, where a small lesion covers as many voxels as
a larger one did in training) it runs the real engine once (keeping the probability map), then replays the
post-processing (threshold -> breast restriction -> components >= V mm3) for every (threshold, V) pair and
scores lesion Dice and lesion-wise detection against the phantom truth. ``--family`` draws the validation
phantoms from a family of ``breastlesionseg.phantom.randomisation`` (``default``, the classic phantom, or e.g.
``training``, the distribution a randomised fine-tune learnt); held-out families are refused. Prints a table and
writes JSON; with ``--update-card`` it writes the chosen ``inference_window`` / ``inference_spacing_mm`` /
``threshold`` / ``min_lesion_volume_mm3`` into the model card (weights untouched).

``--select`` is the rule that picks the setting (:data:`SELECTION_RULES`): ``fewest-fp`` (no missed lesion
> 20 mm3, then fewest false components per exam down to 1, then Dice) suits a model that reports every
component; ``best-dice`` (no missed lesion, then Dice) suits a model whose components a per-lesion confidence
model splits into reported lesions and candidates afterwards, so the raw false components are not what the
radiologist sees.

    .venv/bin/python scripts/calibrate_inference.py MODEL_DIR --seeds 2000-2007 \
        --windows 16,32,32 32,64,64 --spacing-scales 1 0.75 --thresholds 0.4 0.5 0.6 0.7 --min-volumes 10 20 30
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from breastlesionseg.phantom.seeds import parse_seeds, seeds_argument

log = logging.getLogger("calibrate_inference")

HELD_OUT_SEEDS = set(range(0, 20))
#: setting-selection rules of --select (the first is the default)
SELECTION_RULES = ("fewest-fp", "best-dice")


def selection_key(setting: dict, rule: str) -> tuple:
    """Sort key of one calibrated setting (smaller is better) under ``rule`` (:data:`SELECTION_RULES`).

    Args:
        setting: a summary row: ``missed_over_20mm3``, ``fp_per_exam``, ``dice_mean_with_lesion`` (None
            without lesions), ``seconds_per_exam``.
        rule: ``fewest-fp`` or ``best-dice``.
    """
    dice = -(setting["dice_mean_with_lesion"] or 0.0)
    if rule == "fewest-fp":
        return (setting["missed_over_20mm3"], max(setting["fp_per_exam"], 1.0), dice, setting["seconds_per_exam"])
    if rule == "best-dice":
        return (setting["missed_over_20mm3"], dice, setting["fp_per_exam"], setting["seconds_per_exam"])
    raise ValueError(f"unknown selection rule {rule!r}; one of {SELECTION_RULES}")


def _window(text: str) -> tuple[int, int, int]:
    values = tuple(int(v) for v in text.split(","))
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"window must be D,H,W, got {text!r}")
    return values  # type: ignore[return-value]


def detection_counts(detection: dict) -> dict[str, int]:
    """``fp``, ``fn`` and ``fn_over_20mm3`` (missed reference lesions > 20 mm3) of a
    :func:`breastlesionseg.metrics.detection.lesion_detection` result."""
    return {"fp": int(detection["counts"]["fp"]), "fn": int(detection["counts"]["fn"]),
            "fn_over_20mm3": int(detection["counts_by_volume_mm3"]["gt20"]["fn"])}


def _setting(record: dict) -> tuple:
    """The setting a calibration record was scored under: (window, spacing scale, threshold, minimum volume)."""
    return tuple(record["window"]), record["spacing_scale"], record["threshold"], record["min_volume_mm3"]


def _scale(text: str) -> float:
    value = float(text)
    if not 0.25 <= value <= 4.0:
        raise argparse.ArgumentTypeError(f"spacing scale must be a factor in [0.25, 4], got {text!r}")
    return value


def scaled_spacing(target_spacing_mm, scale: float) -> tuple[float, float, float] | None:
    """The inference grid spacing (x, y, z) in mm for ``scale`` times the training spacing; ``None`` for 1 (the
    card then runs at its training spacing)."""
    if scale == 1.0:
        return None
    return tuple(round(float(s) * scale, 6) for s in target_spacing_mm)  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    """Run the calibration; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model folder or name")
    parser.add_argument("--seeds", type=seeds_argument, default=parse_seeds("2000-2007"),
                        help="validation phantom seeds")
    parser.add_argument("--windows", type=_window, nargs="+", default=None, help="candidate windows D,H,W")
    parser.add_argument("--spacing-scales", type=_scale, nargs="+", default=[1.0],
                        help="candidate inference grid spacings as factors of the training spacing (default 1)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7])
    parser.add_argument("--min-volumes", type=float, nargs="+", default=[10.0, 20.0, 30.0], help="mm3")
    parser.add_argument("--family", default="default",
                        help="validation phantoms: 'default' (the classic phantom) or a non-held-out family of "
                             "breastlesionseg.phantom.randomisation (e.g. training)")
    parser.add_argument("--select", choices=SELECTION_RULES, default=SELECTION_RULES[0],
                        help="rule that picks the setting: fewest-fp (no missed lesion, fewest false components, "
                             "Dice) or best-dice (no missed lesion, Dice; for models with a per-lesion confidence "
                             "split)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument("--update-card", action="store_true", help="write the chosen settings into the model card")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="take the chosen settings from an earlier run's --json file instead of recomputing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    bad = sorted(set(args.seeds) & HELD_OUT_SEEDS)
    if bad:
        parser.error(f"--seeds must not include the held-out evaluation seeds 0-19 (got {bad})")
    from breastlesionseg.phantom.randomisation import FAMILIES

    if args.family not in FAMILIES or FAMILIES[args.family].heldout:
        usable = sorted(name for name, fam in FAMILIES.items() if not fam.heldout)
        parser.error(f"--family {args.family!r} is not a calibration family (one of {usable}; held-out families "
                     f"are never calibrated on)")

    import torch

    from breastlesionseg.inference import InferenceConfig, SegmentationEngine
    from breastlesionseg.inference.postprocess import postprocess_probability
    from breastlesionseg.metrics import evaluate_segmentation
    from breastlesionseg.nn import load_model, resolve_model
    from breastlesionseg.phantom import generate_phantom
    from breastlesionseg.phantom.randomisation import draw_config

    torch.set_num_threads(args.threads)
    folder = resolve_model(args.model)
    if args.from_json:
        earlier = json.loads(args.from_json.read_text(encoding="utf-8"))
        if args.update_card:
            _update_card(folder, earlier["chosen"], earlier["seeds"], earlier.get("family", "default"))
        return 0
    _, card = load_model(folder)
    windows = args.windows or [tuple(card.patch_size)]

    engines = {}  # one engine per (window, grid): the model is loaded and its backend prepared once
    for window, scale in [(w, f) for w in windows for f in args.spacing_scales]:
        engine = SegmentationEngine(InferenceConfig(model=str(folder), device="cpu", window_zyx=window,
                                                    save_probability=True, num_threads=args.threads))
        engine.card.inference_spacing_mm = scaled_spacing(card.target_spacing_mm, scale)
        engines[(window, scale)] = engine

    records: list[dict] = []
    for seed in args.seeds:
        phantom = generate_phantom(draw_config(args.family, seed))
        exam, truth = phantom.exam, phantom.lesion_labels
        for (window, scale), engine in engines.items():
            t0 = time.perf_counter()
            result = engine.run(exam)
            seconds = time.perf_counter() - t0
            breast = result.breast_mask.array
            for threshold in args.thresholds:
                for min_volume in args.min_volumes:
                    post = postprocess_probability(result.probability.array, exam.geometry, exam.geometry,
                                                   breast, threshold, min_volume)
                    pred = truth.with_array(np.asarray(post.lesion_labels_crop, dtype=np.uint16), name="prediction")
                    ev = evaluate_segmentation(pred, truth, surface_distances_mm=False)
                    records.append({
                        "seed": seed, "window": list(window), "spacing_scale": scale, "threshold": threshold,
                        "min_volume_mm3": min_volume, "has_lesion": bool(truth.array.any()), "dice": ev["dice"],
                        **detection_counts(ev["detection"]), "seconds": seconds,
                    })
            log.info("seed %d window %s spacing x%g: %.1f s", seed, window, scale, seconds)

    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(_setting(r), []).append(r)
    summary = []
    for (window, scale, threshold, min_volume), rows in sorted(groups.items()):
        with_lesion = [r["dice"] for r in rows if r["has_lesion"]]
        summary.append({
            "window": list(window), "spacing_scale": scale, "threshold": threshold, "min_volume_mm3": min_volume,
            "dice_mean_with_lesion": float(np.mean(with_lesion)) if with_lesion else None,
            "fp_per_exam": float(np.mean([r["fp"] for r in rows])),
            "missed_over_20mm3": int(sum(r["fn_over_20mm3"] for r in rows)),
            "seconds_per_exam": float(np.mean([r["seconds"] for r in rows])),
        })
    print("| window | spacing x | threshold | min mm3 | lesion Dice | FP/exam | missed >20 mm3 | s/exam |")
    print("|---|---|---|---|---|---|---|---|")
    for s in summary:
        print(f"| {s['window']} | {s['spacing_scale']:g} | {s['threshold']} | {s['min_volume_mm3']:g} | "
              f"{s['dice_mean_with_lesion']:.3f} | {s['fp_per_exam']:.2f} | {s['missed_over_20mm3']} | "
              f"{s['seconds_per_exam']:.1f} |")

    best = {**min(summary, key=lambda setting: selection_key(setting, args.select)), "selection": args.select}
    print(f"chosen ({args.select}): window {best['window']}, spacing x{best['spacing_scale']:g}, threshold "
          f"{best['threshold']}, min lesion volume {best['min_volume_mm3']:g} mm3 (validation seeds "
          f"{args.seeds[0]}-{args.seeds[-1]}, family {args.family})")
    if args.json:
        args.json.write_text(json.dumps({"seeds": args.seeds, "family": args.family, "selection": args.select,
                                         "summary": summary, "chosen": best, "records": records}, indent=2))
    if args.update_card:
        _update_card(folder, best, args.seeds, args.family)
    return 0


def _update_card(folder: Path, best: dict, seeds: list[int], family: str = "default") -> None:
    """Write the chosen window / threshold / minimum volume into ``folder``'s model card (atomically)."""
    from breastlesionseg.io.atomic import write_text_atomic
    from breastlesionseg.nn.model_card import ModelCard

    card_path = Path(folder) / "model_card.json"
    card = ModelCard.from_dict(json.loads(card_path.read_text(encoding="utf-8")))
    card.inference_window = tuple(best["window"])
    card.inference_spacing_mm = scaled_spacing(card.target_spacing_mm, float(best.get("spacing_scale", 1.0)))
    card.threshold = float(best["threshold"])
    card.min_lesion_volume_mm3 = float(best["min_volume_mm3"])
    card.extra["inference_calibration"] = {"validation_seeds": list(seeds), "family": family, **best,
                                           "script": "scripts/calibrate_inference.py"}
    card.validate()
    write_text_atomic(card_path, card.to_json(), overwrite=True)
    log.info("updated %s", card_path)


if __name__ == "__main__":
    sys.exit(main())
