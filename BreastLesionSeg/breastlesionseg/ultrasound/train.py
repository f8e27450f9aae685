"""Train the ultrasound network on one BUS-BRA fold (resumable) with validation-based early stopping.

Validation score = mean Dice of the validation images (at the network input size) + malignancy ROC AUC,
so that the kept epoch is good at both tasks. Lesion-present AUC on held-out lesion-free crops is logged.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from ..imaging2d.augment import augment_batch
from ..imaging2d.metrics2d import dice_score, roc_auc
from ..imaging2d.training_loop import run_training
from ..io.atomic import write_text_atomic
from ..nn.factory2d import build_network_2d
from .busbra import fold_split, read_busbra
from .config import UltrasoundTrainConfig
from .losses import UltrasoundLoss
from .training_data import LoadedImage, collate, epoch_samples, evaluation_samples

log = logging.getLogger(__name__)

CONFIG_FILE = "train_config.json"
EVAL_BATCH = 32


def predict_samples(model: torch.nn.Module, samples: list[dict]) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Lesion probability maps (N, 1, S, S), lesion-present and malignancy probabilities (N,) of samples."""
    maps, lesion, malignancy = [], [], []
    for start in range(0, len(samples), EVAL_BATCH):
        batch = collate(samples[start:start + EVAL_BATCH])
        output = model(batch["image"].contiguous(memory_format=torch.channels_last))
        maps.append(torch.sigmoid(output.seg_logits.float()))
        lesion.append(torch.sigmoid(output.lesion_logit.float()))
        malignancy.append(torch.sigmoid(output.malignancy_logit.float()))
    return torch.cat(maps), torch.cat(lesion).numpy(), torch.cat(malignancy).numpy()


def make_validator(images: list[LoadedImage], size_px: int):
    """``model -> {"score", "dice", "malignancy_auc", "lesion_auc"}`` on the validation images."""
    positives, negatives = evaluation_samples(images, size_px)
    malignant = np.array([s["malignant"] for s in positives])

    def validate(model: torch.nn.Module) -> dict[str, float]:
        maps, lesion_pos, malignancy = predict_samples(model, positives)
        _, lesion_neg, _ = predict_samples(model, negatives)
        dice = float(np.mean([dice_score(m[0] > 0.5, s["mask"][0] > 0.5) for m, s in zip(maps, positives)]))
        malignancy_auc = roc_auc(malignancy, malignant)
        lesion_auc = roc_auc(np.concatenate([lesion_pos, lesion_neg]),
                             np.concatenate([np.ones(len(lesion_pos)), np.zeros(len(lesion_neg))]))
        return {"score": dice + np.nan_to_num(malignancy_auc), "dice": dice,
                "malignancy_auc": malignancy_auc, "lesion_auc": lesion_auc}

    return validate


def make_epoch_batches(images: list[LoadedImage], config: UltrasoundTrainConfig):
    """``epoch -> iterator of augmented batches`` (seeded by the epoch, so a resumed run is reproducible)."""
    def batches(epoch: int):
        rng = np.random.default_rng([config.loop.seed, epoch])
        generator = torch.Generator().manual_seed(config.loop.seed * 100_003 + epoch)
        pending = []
        for sample in epoch_samples(images, config.input_size_px, config.negative_fraction, rng):
            pending.append(sample)
            if len(pending) == config.batch_size:
                yield augmented(collate(pending), generator)
                pending = []
        if len(pending) >= 2:
            yield augmented(collate(pending), generator)

    return batches


def augmented(batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The batch with :func:`augment_batch` applied to image and mask."""
    image, mask = augment_batch(batch["image"], batch["mask"], generator)
    return {**batch, "image": image, "mask": mask}


def train_fold(data_root: str | Path, fold: int, output_dir: str | Path, config: UltrasoundTrainConfig,
               resume: bool = False) -> Path:
    """Train on the fold's training images, early-stop on its validation images.

    Args:
        data_root: BUS-BRA folder.
        fold: 0..4 (test images are the dataset's ``kFold == fold + 1``, or the held-out scanner's images
            when ``config.holdout_device`` is set; never seen here).
        output_dir: run folder; the fold's checkpoints go to ``output_dir/fold_<k>``.
        config: training configuration (written to ``fold_<k>/train_config.json``).
        resume: continue an interrupted run.
    Returns:
        The fold folder (``best_weights.pt`` there is the model to keep).
    """
    fold_dir = Path(output_dir) / f"fold_{fold}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.loop.seed + fold)
    split = fold_split(read_busbra(data_root), fold, config.holdout_device)
    log.info("fold %d: %d train, %d validation, %d test images", fold, len(split["train"]), len(split["val"]), len(split["test"]))
    train_images, val_images = load_images_logged(split["train"]), load_images_logged(split["val"])
    write_text_atomic(fold_dir / CONFIG_FILE, json.dumps({"fold": fold, **config.to_dict()}, indent=1), overwrite=True)
    model = build_network_2d(config.arch, config.network).to(memory_format=torch.channels_last)
    loss_fn = UltrasoundLoss(config.seg_loss, config.lesion_loss_weight, config.malignancy_loss_weight)

    def batch_loss(net: torch.nn.Module, batch: dict) -> torch.Tensor:
        return loss_fn(net(batch["image"].contiguous(memory_format=torch.channels_last)), batch)

    run_training(model, make_epoch_batches(train_images, config), batch_loss,
                 make_validator(val_images, config.input_size_px), fold_dir, config.loop, resume=resume)
    return fold_dir


def run_split(data_root: str | Path, fold_dir: Path, fold: int) -> dict[str, list]:
    """The split a trained fold used (its ``train_config.json`` says whether a scanner was held out; a folder
    without one is a plain fold)."""
    path = Path(fold_dir) / CONFIG_FILE
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return fold_split(read_busbra(data_root), fold, config.get("holdout_device", ""))


def load_images_logged(records):
    """:func:`load_images` with a log line."""
    from .training_data import load_images

    images = load_images(records)
    log.info("loaded %d images (%d with a lesion-free region for negatives)", len(images), sum(bool(i.free_regions) for i in images))
    return images
