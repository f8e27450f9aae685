"""Cross-validated training of the mammography lesion model (resumable), with full-resolution CV Dice.

``python -m breastlesionseg.mammography.train --data DIR --output RUN_DIR [--resume]`` trains one model
per patient-wise fold (``RUN_DIR/fold_<k>/``: last.pt, best_weights.pt, history.json) with the shared
2D training loop, then evaluates each fold's best weights on its held-out images at the files' own
resolution (prediction mapped back through the letterbox) and writes ``RUN_DIR/cv_results.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..imaging2d.augment import augment_batch
from ..imaging2d.metrics2d import dice_score
from ..imaging2d.training_loop import BEST_WEIGHTS, run_training
from ..io.atomic import write_text_atomic
from ..nn.hires_unet import HiResUNet2D
from .cddcesm import patient_folds, read_cddcesm
from .config import MammographyTrainConfig
from .training_data import PreparedCase, collate, prepare_case

log = logging.getLogger(__name__)
CV_RESULTS = "cv_results.json"
EVAL_BATCH = 16


def make_epoch_batches(cases: list[PreparedCase], config: MammographyTrainConfig):
    """``epoch -> iterator of augmented batches`` (shuffle and augmentation seeded by the epoch: resumable)."""
    def batches(epoch: int):
        order = np.random.default_rng([config.loop.seed, epoch]).permutation(len(cases))
        generator = torch.Generator().manual_seed(config.loop.seed * 100_003 + epoch)
        for start in range(0, len(order), config.batch_size):
            chunk = [cases[i] for i in order[start:start + config.batch_size]]
            if len(chunk) < 2:
                continue
            batch = collate(chunk)
            image, mask = augment_batch(batch["image"], batch["mask"], generator)
            yield {"image": image, "mask": mask}

    return batches


def make_loss():
    """``(model, batch) -> Dice (MONAI, smoothed) + BCE`` of the lesion logits."""
    from monai.losses import DiceLoss

    dice = DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)

    def batch_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model(batch["image"]).float()
        return dice(logits, batch["mask"]) + F.binary_cross_entropy_with_logits(logits, batch["mask"])

    return batch_loss


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, cases: list[PreparedCase]) -> torch.Tensor:
    """(N, 1, S, S) lesion probabilities at network resolution (model in eval mode)."""
    model.eval()
    maps = [torch.sigmoid(model(collate(cases[i:i + EVAL_BATCH])["image"]).float())
            for i in range(0, len(cases), EVAL_BATCH)]
    return torch.cat(maps)


def make_validator(cases: list[PreparedCase], threshold: float):
    """``model -> {"score": mean Dice at network resolution, "dice": same}`` on held-out cases."""
    def validate(model: torch.nn.Module) -> dict[str, float]:
        maps = predict_probabilities(model, cases)
        dice = float(np.mean([dice_score(m[0] > threshold, c.mask[0] > 0.5) for m, c in zip(maps, cases)]))
        return {"score": dice, "dice": dice}

    return validate


def full_resolution_dice(model: torch.nn.Module, cases: list[PreparedCase], threshold: float) -> list[float]:
    """Per-case Dice at the files' resolution: probabilities mapped back through the letterbox, thresholded."""
    maps = predict_probabilities(model, cases)
    return [dice_score(c.letterbox.invert(m[0]) > threshold, c.full_mask) for m, c in zip(maps, cases)]


def train_fold(cases: list[PreparedCase], folds: list[int], fold: int, run_dir: Path,
               config: MammographyTrainConfig, resume: bool, device: str = "cpu") -> dict[str, Any]:
    """Train fold ``fold`` (resumable) on ``device`` ("cpu", "cuda", "cuda:N" or "auto"), evaluate its best
    weights on the CPU; the fold's result record."""
    fold_dir = run_dir / f"fold_{fold}"
    train = [c for c, f in zip(cases, folds) if f != fold]
    held_out = [c for c, f in zip(cases, folds) if f == fold]
    log.info("fold %d: %d training, %d held-out images", fold, len(train), len(held_out))
    torch.manual_seed(config.loop.seed + fold)
    model = HiResUNet2D(config.network)
    run_training(model, make_epoch_batches(train, config), make_loss(), make_validator(held_out, config.threshold),
                 fold_dir, config.loop, resume=resume, device=device, run_settings=config.to_dict())
    model.load_state_dict(torch.load(fold_dir / BEST_WEIGHTS, map_location="cpu", weights_only=True))
    dice = full_resolution_dice(model, held_out, config.threshold)
    history = json.loads((fold_dir / "history.json").read_text(encoding="utf-8"))
    best = max(history, key=lambda r: r["val_score"])
    return {"fold": fold, "n_held_out": len(held_out), "best_epoch": best["epoch"], "epochs_run": len(history),
            "mean_dice": float(np.mean(dice)), "held_out": [c.case.name for c in held_out],
            "dice_per_image": [round(d, 4) for d in dice]}


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled per-image Dice mean/SD/median and the spread of fold means."""
    dice = [d for r in records for d in r["dice_per_image"]]
    fold_means = [r["mean_dice"] for r in records]
    return {"n_images": len(dice), "dice_mean": float(np.mean(dice)), "dice_sd": float(np.std(dice, ddof=1)),
            "dice_median": float(np.median(dice)),
            "dice_iqr": [float(np.percentile(dice, 25)), float(np.percentile(dice, 75))],
            "fold_mean_dice": fold_means,
            "fold_mean_dice_sd": float(statistics.stdev(fold_means)) if len(fold_means) > 1 else 0.0}


def cross_validate(data_root: str | Path, run_dir: str | Path, config: MammographyTrainConfig,
                   resume: bool = False, only_folds: Sequence[int] | None = None,
                   device: str = "cpu") -> dict[str, Any]:
    """Train (on ``device``) and evaluate every (or the given) fold; writes and returns ``cv_results.json``'s
    content."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    raw = read_cddcesm(data_root)
    folds = patient_folds(raw, config.n_folds)
    cases = [prepare_case(c, config.input_size_px) for c in raw]
    records = []
    for fold in (only_folds if only_folds is not None else range(config.n_folds)):
        records.append(train_fold(cases, folds, fold, run_dir, config, resume, device))
        result = {"config": config.to_dict(), "data": str(data_root), "folds": records, "summary": summarize(records)}
        write_text_atomic(run_dir / CV_RESULTS, json.dumps(result, indent=1), overwrite=True)
        log.info("fold %d: mean Dice %.3f (%d images)", fold, records[-1]["mean_dice"], records[-1]["n_held_out"])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="CDD-CESM folder (images/, masks/)")
    p.add_argument("--output", required=True, help="run folder (fold checkpoints, cv_results.json)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--folds", type=int, nargs="+", default=None, help="train only these folds")
    p.add_argument("--size-px", type=int, default=None, help="network input side (default: the config's)")
    p.add_argument("--n-folds", type=int, default=None)
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto", help="auto (a CUDA GPU when there is one), cpu, cuda or cuda:N")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    config = MammographyTrainConfig()
    if args.size_px is not None:
        config.input_size_px = args.size_px
    if args.n_folds is not None:
        config.n_folds = args.n_folds
    if args.max_epochs is not None:
        config.loop.max_epochs = args.max_epochs
    config.__post_init__()
    from ..inference.device import describe_device, resolve_device
    device = resolve_device(args.device)  # an unknown or missing device fails before any image is read
    log.info("training on %s", describe_device(device))
    result = cross_validate(args.data, args.output, config, args.resume, args.folds, str(device))
    log.info("cross-validated Dice %.3f +- %.3f (n=%d)", result["summary"]["dice_mean"], result["summary"]["dice_sd"],
             result["summary"]["n_images"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
