"""Compare the segmentation losses of the ultrasound attention U-Net paper (BCE vs Dice, and our Dice+BCE).

Trains the fold-``k`` model once per loss with the shipped model's schedule (scripts/train_ultrasound_model.sh:
128 px, batch 16, <= 12 epochs, patience 5, lr 2e-3), evaluates each on the fold's BUS-BRA test images and
writes a Markdown table. Resumable: rerun the same command to continue unfinished trainings. A run folder
that already holds the fold (e.g. the shipped model's run for ``dice+bce``) is reused as it is.

Usage::

    python benchmarks/compare_ultrasound_losses.py --data ../shared/data/busbra-ultrasound \\
        --reuse dice+bce=benchmarks/output/us-attunet-busbra --out benchmarks/output/us-loss-comparison
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("compare_ultrasound_losses")
REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "breastlesionseg.cli.main"]
LOSSES: tuple[str, ...] = ("bce", "dice", "dice+bce")
SCHEDULE = ["--input-size", "128", "--batch-size", "16", "--max-epochs", "12", "--patience", "5",
            "--learning-rate", "2e-3"]
COLUMNS = ("dice", "iou", "precision", "recall", "hd95_px", "malignancy_auc", "lesion_present_auc")


def run_folder(out: Path, loss: str, reuse: dict[str, Path]) -> Path:
    """The run folder of one loss (a reused one, or ``out/<loss>``)."""
    return reuse.get(loss, out / loss.replace("+", "_"))


def train_and_evaluate(data: Path, run: Path, loss: str, fold: int, threads: int) -> dict:
    """Train (resuming) and evaluate fold ``fold`` with ``loss``; returns the fold's test metrics."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if not (run / f"fold_{fold}" / "test_results.json").is_file():
        subprocess.run([*CLI, "train-ultrasound", "--data", str(data), "--output", str(run), "--folds", str(fold),
                        "--resume", "--seg-loss", loss, "--threads", str(threads), *SCHEDULE], check=True, env=env)
        subprocess.run([*CLI, "evaluate-ultrasound", "--data", str(data), "--run", str(run), "--threads", str(threads)],
                       check=True, env=env)
    report = json.loads((run / "report" / "report.json").read_text(encoding="utf-8"))
    config = json.loads((run / f"fold_{fold}" / "train_config.json").read_text(encoding="utf-8"))
    row = report["per_fold"].get(str(fold))
    if row is None:
        raise RuntimeError(f"{run}: fold {fold} was not evaluated")
    if config.get("seg_loss") != loss:
        raise RuntimeError(f"{run}: fold {fold} was trained with {config.get('seg_loss')!r}, not {loss!r}")
    history = json.loads((run / f"fold_{fold}" / "history.json").read_text(encoding="utf-8"))
    epochs = len(history) if isinstance(history, list) else len(history.get("epochs", history.get("loss", [])))
    return {"loss": loss, "run": str(run), "epochs_trained": epochs, **row}


def markdown(rows: list[dict], fold: int) -> str:
    """The comparison as a Markdown table."""
    lines = [f"# Segmentation loss comparison on BUS-BRA fold {fold} (test images, attention U-Net, 128 px)", "",
             "| loss | " + " | ".join(COLUMNS) + " | epochs |", "|---" * (len(COLUMNS) + 2) + "|"]
    for r in rows:
        values = " | ".join("-" if r.get(c) is None else f"{r[c]:.3f}" for c in COLUMNS)
        lines.append(f"| {r['loss']} | {values} | {r.get('epochs_trained', '-')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/busbra-ultrasound")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/output/us-loss-comparison")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    parser.add_argument("--reuse", action="append", default=[], metavar="LOSS=RUN",
                        help="use an existing run folder for a loss (e.g. dice+bce=benchmarks/output/us-attunet-busbra)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    reuse = {}
    for item in args.reuse:
        loss, sep, path = item.partition("=")
        if not sep or loss not in LOSSES:
            parser.error(f"--reuse {item!r}: expected LOSS=RUN with LOSS one of {LOSSES}")
        reuse[loss] = Path(path)
    rows = [train_and_evaluate(args.data, run_folder(args.out, loss, reuse), loss, args.fold, args.threads)
            for loss in args.losses]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "comparison.json").write_text(json.dumps(rows, indent=2, allow_nan=False, default=str) + "\n",
                                              encoding="utf-8")
    text = markdown(rows, args.fold)
    (args.out / "comparison.md").write_text(text, encoding="utf-8")
    log.info("\n%s", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
