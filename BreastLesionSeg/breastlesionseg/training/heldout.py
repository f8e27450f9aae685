"""Held-out evaluation of a model on synthetic phantoms (the demo model's acceptance test).

``python -m breastlesionseg.training.heldout MODEL --seeds 0-19 [--update-card]`` generates each
phantom (``PhantomConfig(seed=s)`` defaults: 0-3 lesions, so some phantoms have none), prepares it
exactly like training/inference (OV crop, model spacing, channels), predicts the full crop with
sliding windows and scores Dice/IoU against the phantom's ground truth (validation code of
:mod:`.validate`). ``--update-card`` records the result in the model card's ``validation_metrics``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from ..io.atomic import write_text_atomic
from ..phantom.seeds import parse_seeds
from .preprocess import prepare_case
from .validate import ValidationResult, validate_cases

log = logging.getLogger(__name__)


def evaluate_on_phantoms(model: str | Path, seeds: Sequence[int], device: str = "cpu",
                         margin_mm: float | None = None) -> dict[str, Any]:
    """Score a model on phantoms ``seeds`` (see module docstring).

    Returns:
        ``{"seeds", "dice_mean_all", "dice_mean_with_lesion", "iou_mean_with_lesion", "pooled_dice",
        "n_with_lesion", "n_lesion_free", "lesion_free_with_false_positive", "per_case", "time_s"}``.
    """
    from ..nn import load_model
    from ..phantom import PhantomConfig, generate_phantom

    from .loop import resolve_device

    dev = resolve_device(device)
    network, card = load_model(model, device=str(dev))
    margin = margin_mm if margin_mm is not None else float(card.extra.get("training", {}).get("crop_margin_mm", 16.0))
    result = ValidationResult()
    t0 = time.monotonic()
    for seed in seeds:
        ph = generate_phantom(PhantomConfig(seed=int(seed)))
        case = prepare_case(f"phantom-seed-{seed}", ph.exam, ph.lesion_labels, ph.breast_mask, card.input_channels,
                            card.normalization, card.target_spacing_mm, margin)
        res = validate_cases(network, [case], card.patch_size, card.overlap, card.threshold, dev)
        row = res.per_case[0]
        row["seed"] = int(seed)
        row["n_lesions"] = len(ph.lesions)
        result.per_case.append(row)
        log.info("phantom seed %d: %d lesion(s), Dice %.3f, IoU %.3f (%d predicted / %d reference voxels)", seed,
                 len(ph.lesions), row["dice"], row["iou"], row["predicted_voxels"], row["lesion_voxels"])
    with_lesion = [c for c in result.per_case if c["lesion_voxels"] > 0]
    free = [c for c in result.per_case if c["lesion_voxels"] == 0]
    mean = lambda rows, key: float(sum(r[key] for r in rows) / len(rows)) if rows else None  # noqa: E731
    return {
        "seeds": [int(s) for s in seeds],
        "dice_mean_with_lesion": mean(with_lesion, "dice"),
        "iou_mean_with_lesion": mean(with_lesion, "iou"),
        "dice_mean_all": mean(result.per_case, "dice"),
        "pooled_dice": result.pooled_dice,
        "n_with_lesion": len(with_lesion),
        "n_lesion_free": len(free),
        "lesion_free_with_false_positive": sum(1 for c in free if c["predicted_voxels"] > 0),
        "evaluation": ("full-crop sliding-window prediction on the model grid (OV crop at the card's spacing), "
                       "threshold and breast restriction as in inference; Dice per phantom; lesion-free phantoms "
                       "score 1 only with no predicted voxel"),
        "per_case": [{k: c[k] for k in ("seed", "n_lesions", "dice", "iou", "lesion_voxels", "predicted_voxels")}
                     for c in result.per_case],
        "time_s": time.monotonic() - t0,
    }


def record_in_card(model: str | Path, metrics: dict[str, Any], key: str = "heldout_phantoms") -> Path:
    """Store ``metrics`` under ``validation_metrics[key]`` of the model card (weights untouched)."""
    from ..nn import CARD_FILE, ModelCard, resolve_model

    folder = resolve_model(model)
    card = ModelCard.read(folder)
    card.validation_metrics = {**card.validation_metrics, key: metrics}
    card.validate()
    return write_text_atomic(folder / CARD_FILE, card.to_json(), overwrite=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry (``python -m breastlesionseg.training.heldout``)."""
    parser = argparse.ArgumentParser(description="Evaluate a lesion model on held-out synthetic phantoms.")
    parser.add_argument("model", help="model id or folder")
    parser.add_argument("--seeds", default="0-19", help="phantom seeds (default 0-19, the demo model's held-out set)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--update-card", action="store_true", help="write the result into the model card")
    parser.add_argument("--json", default=None, help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    metrics = evaluate_on_phantoms(args.model, parse_seeds(args.seeds), args.device)
    text = json.dumps(metrics, indent=2)
    if args.json:
        write_text_atomic(args.json, text + "\n", overwrite=True)
    if args.update_card:
        record_in_card(args.model, {k: v for k, v in metrics.items() if k != "per_case"} | {
            "per_case_dice": {str(c["seed"]): round(c["dice"], 4) for c in metrics["per_case"]}})
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
