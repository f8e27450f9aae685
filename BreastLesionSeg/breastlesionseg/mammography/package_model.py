"""Package one cross-validation fold's weights as a model folder with its 2D model card.

``python -m breastlesionseg.mammography.package_model --run RUN_DIR --fold K --model-dir models/<id> [--force]``
writes ``weights.pt`` (the fold's best-validation ``state_dict``), ``model_card.json`` (config, input size,
threshold, data and citation, the patient-wise split, the cross-validated Dice with its spread, the
weights' sha256, the training command), ``README.md`` (the same for people) and ``cross_validation.json``
(the run's ``cv_results.json``: every held-out image's Dice).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from ..imaging2d.model_card2d import ModelCard2D, save_model_2d
from ..imaging2d.training_loop import BEST_WEIGHTS
from ..io.atomic import write_text_atomic
from .config import MAMMOGRAPHY_ARCH
from .train import CV_RESULTS

log = logging.getLogger(__name__)

DATASET_CITATION = (
    'Khaled R. et al., "Categorized contrast enhanced mammography dataset for diagnostic and artificial '
    'intelligence research", Scientific Data 9:122, 2022; TCIA doi:10.7937/29kw-ae92. Licence CC BY 4.0.'
)
TRAINING_DATA = (
    "DEMO MODEL, SMALL DATA: 98 CDD-CESM mammography JPEGs (512 x 512, low-energy and contrast-subtracted "
    "CC/MLO views; 90 distinct views of 77 patients, 59 files are flipped/mirrored copies) with hand-drawn "
    "lesion masks (JPEG, thresholded at 128), as published in the 98-image subset of the public repository "
    "sarah-antillia/Tensorflow-Image-Segmentation-Augmented-Mammogram-. Trained from scratch, no pretrained weights."
)
TRAINING_COMMAND = "scripts/train_mammography_model.sh"
#: the cross-validation record copied into the model folder (every held-out image's Dice, the config)
CV_FILE = "cross_validation.json"


def build_card(model_id: str, cv: dict[str, Any], fold: int) -> ModelCard2D:
    """The card of fold ``fold`` of the cross-validation result ``cv`` (``cv_results.json`` content)."""
    config = cv["config"]
    record = next((r for r in cv["folds"] if r["fold"] == fold), None)
    if record is None:
        done = [r["fold"] for r in cv["folds"]]
        raise InputError(f"fold {fold} is not in the cross-validation results (folds {done})")
    summary = cv["summary"]
    metrics = {
        "metric": "Dice per image at the files' 512 x 512 resolution, threshold "
                  f"{config['threshold']}, patient-wise {config['n_folds']}-fold cross-validation",
        "cv_dice_mean": round(summary["dice_mean"], 4), "cv_dice_sd": round(summary["dice_sd"], 4),
        "cv_dice_median": round(summary["dice_median"], 4), "cv_dice_iqr": [round(v, 4) for v in summary["dice_iqr"]],
        "cv_fold_mean_dice": [round(v, 4) for v in summary["fold_mean_dice"]], "cv_n_images": summary["n_images"],
        "this_model_fold": fold, "this_model_held_out_dice_mean": round(record["mean_dice"], 4),
        "this_model_held_out_dice_per_image": dict(zip(record["held_out"], record["dice_per_image"])),
        "paper_reference": "Tardy & Mateus report Dice 0.58 on INbreast at 1536 x 1536 (different data and size)",
    }
    split = {"n_folds": config["n_folds"], "grouping": "patient id (Pxxx, flipped_/mirrored_ prefix stripped)",
             "this_model_fold": fold, "held_out_images": record["held_out"],
             "best_epoch": record["best_epoch"], "epochs_run": record["epochs_run"]}
    return ModelCard2D(model_id=model_id, modality="mammography", arch=MAMMOGRAPHY_ARCH, config=config["network"],
                       input_size_px=config["input_size_px"], threshold=config["threshold"],
                       training_data=TRAINING_DATA, dataset_citation=DATASET_CITATION, split=split,
                       cv_metrics=metrics, trained_from_scratch=True, training_command=TRAINING_COMMAND)


def readme_text(card: ModelCard2D) -> str:
    """``README.md`` of the model folder, for people."""
    m = card.cv_metrics
    return "\n".join([
        f"# {card.model_id}", "",
        "**Demonstration model trained on small data (98 images). For research use only; not a medical device.**", "",
        "Lesion segmentation of 2D mammograms with the lightweight high-resolution U-Net of Tardy & Mateus "
        f"(shipped separable-residual variant, {card.config['levels']} levels, base width {card.config['base_width']}), "
        f"run on a {card.input_size_px} x {card.input_size_px} px letterboxed input.", "",
        f"- Training data: {card.training_data}",
        f"- Citation (required by the data licence): {card.dataset_citation}",
        f"- Cross-validated Dice ({m['cv_n_images']} images, patient-wise {card.split['n_folds']} folds): "
        f"mean {m['cv_dice_mean']:.4f} +- {m['cv_dice_sd']:.4f} (SD), median {m['cv_dice_median']:.4f}, "
        f"IQR {m['cv_dice_iqr'][0]:.4f}-{m['cv_dice_iqr'][1]:.4f}; fold means "
        + ", ".join(f"{v:.4f}" for v in m["cv_fold_mean_dice"]) + ".",
        f"- These weights are fold {m['this_model_fold']}'s model (trained on the other folds' patients); its "
        f"held-out Dice: {m['this_model_held_out_dice_mean']:.4f}.",
        f"- For comparison only: {m['paper_reference']}.",
        f"- weights.pt sha256: `{card.weights_sha256}`",
        f"- Reproduce: `{card.training_command}`", "",
        card.research_use_text, "",
    ])


def package(run_dir: str | Path, fold: int, model_dir: str | Path, force: bool = False,
            model_id: str | None = None) -> Path:
    """Write the model folder of fold ``fold`` of ``run_dir``; returns the folder."""
    import torch

    run_dir, model_dir = Path(run_dir), Path(model_dir)
    results = run_dir / CV_RESULTS
    if not results.is_file():
        raise InputError(f"'{results}' does not exist: run the cross-validation first")
    cv = json.loads(results.read_text(encoding="utf-8"))
    card = build_card(model_id or model_dir.name, cv, fold)
    state = torch.load(run_dir / f"fold_{fold}" / BEST_WEIGHTS, map_location="cpu", weights_only=True)
    save_model_2d(state, card, model_dir, overwrite=force)
    write_text_atomic(model_dir / "README.md", readme_text(card), overwrite=force)
    write_text_atomic(model_dir / CV_FILE, results.read_text(encoding="utf-8"), overwrite=force)
    log.info("wrote %s (sha256 %s)", model_dir, card.weights_sha256)
    return model_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True)
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--force", action="store_true", help="replace an existing model folder's files")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    package(args.run, args.fold, args.model_dir, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
