"""``breastlesionseg evaluate-ultrasound``: test-fold metrics of trained BUS-BRA folds, the cross-validation
report (per fold, by scanner, by BI-RADS; curves and ROC PNGs) and, with ``--ship``, the model folder of one fold.

    breastlesionseg evaluate-ultrasound --data ../shared/data/busbra-ultrasound --run runs/us
    breastlesionseg evaluate-ultrasound --data ... --run runs/us --ship models/us-attunet-busbra --ship-fold 0 --force
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..errors import InputError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate-ultrasound`` sub-command."""
    p = subparsers.add_parser("evaluate-ultrasound", help="BUS-BRA cross-validation report of trained ultrasound folds",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="DIR", help="BUS-BRA folder")
    p.add_argument("--run", required=True, metavar="DIR", help="training run folder (fold_<k>/ inside)")
    p.add_argument("--folds", type=int, nargs="+", default=None, metavar="K",
                   help="folds to (re)evaluate, finished or not (default: every finished fold, evaluated when its weights changed)")
    p.add_argument("--ship", default=None, metavar="MODEL_DIR", help="also write this model folder from --ship-fold")
    p.add_argument("--ship-fold", type=int, default=0, metavar="K")
    p.add_argument("--force", action="store_true", help="replace an existing model folder")
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=run)


def _stale(fold_dir: Path) -> bool:
    """Whether the fold's test results predate its network or crop classifier, or its malignancy model is stale."""
    from ..imaging2d.training_loop import BEST_WEIGHTS
    from ..ultrasound.calibrate_malignancy import malignancy_model_current
    from ..ultrasound.evaluate import TEST_RESULTS
    from ..ultrasound.train_crop_classifier import member_dirs

    results = fold_dir / TEST_RESULTS
    if not results.is_file() or not malignancy_model_current(fold_dir):
        return True
    weights = [fold_dir / BEST_WEIGHTS, *(folder / BEST_WEIGHTS for folder in member_dirs(fold_dir))]
    return any(w.is_file() and results.stat().st_mtime < w.stat().st_mtime for w in weights)


def _finished(folder: Path) -> bool:
    """Whether the training run in ``folder`` (a fold, or one of its crop classifiers) has finished; True when it has
    no run."""
    import torch

    from ..imaging2d.training_loop import LAST_CHECKPOINT

    last = folder / LAST_CHECKPOINT
    return not last.is_file() or bool(torch.load(last, map_location="cpu", weights_only=True).get("finished", False))


def run(args: argparse.Namespace) -> int:
    """Evaluate, report, optionally ship; returns 0."""
    import torch

    from ..imaging2d.training_loop import BEST_WEIGHTS, LAST_CHECKPOINT
    from ..ultrasound.busbra import NUM_FOLDS
    from ..ultrasound.evaluate import TEST_RESULTS, cross_validation_report, evaluate_fold
    from ..ultrasound.report import write_report
    from ..ultrasound.train_crop_classifier import member_dirs

    torch.set_num_threads(max(1, args.threads))
    run_dir = Path(args.run)
    for fold in args.folds if args.folds is not None else range(NUM_FOLDS):
        fold_dir = run_dir / f"fold_{fold}"
        if not (fold_dir / BEST_WEIGHTS).is_file():
            continue
        finished = ((fold_dir / LAST_CHECKPOINT).is_file() and _finished(fold_dir)
                    and all(_finished(folder) for folder in member_dirs(fold_dir)))
        if not finished and args.folds is None:
            log.warning("fold %d (or one of its crop classifiers) is still training or was interrupted: left out (name it in "
                        "--folds to evaluate its best epochs so far)", fold)
            (fold_dir / TEST_RESULTS).unlink(missing_ok=True)
            continue
        if args.folds is not None or _stale(fold_dir):
            log.info("evaluating fold %d on its test images", fold)
            evaluate_fold(args.data, run_dir, fold)
    report = cross_validation_report(run_dir)
    if not report["folds_evaluated"]:
        raise InputError(f"no trained fold with {BEST_WEIGHTS} in '{run_dir}'")
    out_dir = write_report(report, run_dir)
    print(json.dumps({"folds_evaluated": report["folds_evaluated"], "mean_of_folds": report["mean_of_folds"]}, indent=1, default=float))
    print(f"report: {out_dir}")
    if args.ship:
        from ..ultrasound.ship import ship_fold

        if args.ship_fold not in report["per_fold"]:
            raise InputError(f"--ship-fold {args.ship_fold} has not been trained and evaluated in '{run_dir}'")
        folder = ship_fold(args.data, run_dir, args.ship_fold, args.ship, report, overwrite=args.force)
        print(f"shipped fold {args.ship_fold} as {folder}")
    return 0
