"""Cross-validation report files: report.json, report.md, training curves and ROC plots (PNG)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..imaging2d.metrics2d import roc_curve
from ..imaging2d.writer import json_ready
from ..io.atomic import write_atomic, write_text_atomic
from .busbra import NUM_FOLDS
from .evaluate import TEST_RESULTS

ROW_KEYS = ("n_images", "dice", "iou", "precision", "recall", "hd95_px", "malignancy_auc", "network_malignancy_auc",
            "classifier_malignancy_auc",
            "malignancy_sensitivity", "malignancy_specificity", "lesion_present_auc", "lesion_present_specificity")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.3f}"
    return str(value)


def _table(title: str, rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"## {title}", "", "| group | " + " | ".join(ROW_KEYS) + " |", "|---" * (len(ROW_KEYS) + 1) + "|"]
    for name, summary in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(summary.get(k, math.nan)) for k in ROW_KEYS) + " |")
    return lines + [""]


def report_markdown(report: dict[str, Any]) -> str:
    """Markdown tables: per fold + pooled, by scanner, by BI-RADS."""
    lines = ["# BUS-BRA cross-validation report", "",
             f"Folds evaluated: {report['folds_evaluated']} (patient-wise test folds: the dataset's 5-fold-cv.csv, "
             "or folds derived from the Case column where the folder has none). "
             "Lesion-present figures use lesion-free crops of the test images as negatives (synthetic, same images). "
             "Malignancy sensitivity/specificity at probability 0.5; HD95 in pixels of the 256-px images. "
             "network_malignancy_auc: the network's own malignancy output; classifier_malignancy_auc: the lesion-crop "
             "classifier's own output, on the images where a lesion was found; malignancy_auc: both combined with the "
             "lesion descriptors.", ""]
    lines += _table("Per fold and pooled", {**{f"fold {k}": v for k, v in report["per_fold"].items()}, "pooled": report["pooled"]})
    lines += _table("By scanner (pooled over folds)", report.get("by_device", {}))
    lines += _table("By BI-RADS (pooled over folds)", report.get("by_birads", {}))
    lines += ["Data: " + report["dataset_citation"], ""]
    return "\n".join(lines)


def _save_figure(figure, path: Path) -> None:
    write_atomic(path, lambda tmp: figure.savefig(tmp, dpi=110, format="png"), overwrite=True)


def plot_curves(run_dir: Path, out_dir: Path) -> Path | None:
    """Training loss and validation Dice / AUCs per epoch of every fold with a history.json."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    histories = {k: json.loads(p.read_text(encoding="utf-8")) for k in range(NUM_FOLDS) if (p := run_dir / f"fold_{k}" / "history.json").is_file()}
    if not histories:
        return None
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for fold, history in histories.items():
        epochs = [h["epoch"] for h in history]
        axes[0].plot(epochs, [h["train_loss"] for h in history], label=f"fold {fold}")
        axes[1].plot(epochs, [h["val_dice"] for h in history], label=f"fold {fold}")
        axes[2].plot(epochs, [h["val_malignancy_auc"] for h in history], label=f"fold {fold} malignancy")
        axes[2].plot(epochs, [h["val_lesion_auc"] for h in history], "--", label=f"fold {fold} lesion present")
    for axis, title in zip(axes, ("training loss", "validation Dice", "validation AUC")):
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.legend(fontsize=7)
    figure.tight_layout()
    path = out_dir / "training_curves.png"
    _save_figure(figure, path)
    plt.close(figure)
    return path


def plot_roc(run_dir: Path, out_dir: Path) -> Path | None:
    """ROC of malignancy (per fold) and of lesion-present (pooled, lesion-free crops as negatives)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = {k: json.loads(p.read_text(encoding="utf-8")) for k in range(NUM_FOLDS) if (p := run_dir / f"fold_{k}" / TEST_RESULTS).is_file()}
    if not rows:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    pooled = []
    for fold, fold_rows in rows.items():
        pooled.extend(fold_rows)
        lesions = [r for r in fold_rows if r["kind"] == "lesion" and r.get("malignant") is not None]
        if len({r["malignant"] for r in lesions}) < 2:
            continue  # no malignancy ROC without both classes (e.g. a site's images of unknown pathology)
        fpr, tpr = roc_curve(np.array([r["malignancy_probability"] for r in lesions]), np.array([r["malignant"] for r in lesions]))
        axes[0].plot(fpr, tpr, label=f"fold {fold}")
    scores = np.array([r["lesion_present_probability"] for r in pooled])
    labels = np.array([r["kind"] == "lesion" for r in pooled])
    fpr, tpr = roc_curve(scores, labels)
    axes[1].plot(fpr, tpr, label="pooled")
    for axis, title in zip(axes, ("malignancy (test folds)", "lesion present (negatives: lesion-free crops)")):
        axis.plot([0, 1], [0, 1], ":", color="gray")
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("1 - specificity")
        axis.set_ylabel("sensitivity")
        axis.legend(fontsize=7)
    figure.tight_layout()
    path = out_dir / "roc.png"
    _save_figure(figure, path)
    plt.close(figure)
    return path


def write_report(report: dict[str, Any], run_dir: str | Path) -> Path:
    """Write ``run_dir/report/`` (report.json, report.md, training_curves.png, roc.png); returns the folder."""
    run_dir = Path(run_dir)
    out_dir = run_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "report.json", json.dumps(json_ready(report), indent=1), overwrite=True)
    write_text_atomic(out_dir / "report.md", report_markdown(report), overwrite=True)
    plot_curves(run_dir, out_dir)
    plot_roc(run_dir, out_dir)
    return out_dir
