"""Train the ultrasound network on one BUS-BRA(-like) fold (resumable) with validation-based early stopping.

Validation score = mean Dice of the validation images (at the network input size) + malignancy ROC AUC
(images of known pathology only; 0 when they hold fewer than two classes), so that the kept epoch is good
at both tasks. Lesion-present AUC on held-out lesion-free crops is logged. Training can start from the
weights of a 2D ultrasound model (``init_from``: fine-tuning the shipped model on a site's own images).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetError, InputError, ModelError
from ..imaging2d.augment import augment_batch
from ..imaging2d.metrics2d import dice_score, roc_auc
from ..imaging2d.training_loop import check_resume_settings, run_training
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
    """Lesion probability maps (N, 1, S, S), lesion-present and malignancy probabilities (N,) of samples
    (empty for no samples, e.g. images too small for a lesion-free crop)."""
    if not samples:
        return torch.zeros((0, 1, 1, 1)), np.zeros(0, np.float32), np.zeros(0, np.float32)
    maps, lesion, malignancy = [], [], []
    for start in range(0, len(samples), EVAL_BATCH):
        batch = collate(samples[start:start + EVAL_BATCH])
        output = model(batch["image"].contiguous(memory_format=torch.channels_last))
        maps.append(torch.sigmoid(output.seg_logits.float()))
        lesion.append(torch.sigmoid(output.lesion_logit.float()))
        malignancy.append(torch.sigmoid(output.malignancy_logit.float()))
    return torch.cat(maps), torch.cat(lesion).numpy(), torch.cat(malignancy).numpy()


def make_validator(images: list[LoadedImage], size_px: int):
    """``model -> {"score", "dice", "malignancy_auc", "lesion_auc"}`` on the validation images.

    ``malignancy_auc`` uses the images of known pathology only (NaN when they hold fewer than two classes).
    """
    positives, negatives = evaluation_samples(images, size_px)
    known = np.array([bool(s.get("malignant_known", 1.0)) for s in positives], dtype=bool)
    malignant = np.array([s["malignant"] for s in positives])[known]

    def validate(model: torch.nn.Module) -> dict[str, float]:
        maps, lesion_pos, malignancy = predict_samples(model, positives)
        _, lesion_neg, _ = predict_samples(model, negatives)
        dice = float(np.mean([dice_score(m[0] > 0.5, s["mask"][0] > 0.5) for m, s in zip(maps, positives)]))
        malignancy_auc = roc_auc(malignancy[known], malignant)
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


def initial_network(config: UltrasoundTrainConfig, init_from: str | Path | None = None) -> tuple[torch.nn.Module, dict]:
    """The network training starts from, and what to record about its origin in ``train_config.json``.

    Args:
        config: the run's configuration; with ``init_from`` its ``arch`` and ``network`` must be the card's
            (:func:`init_model_card` gives them).
        init_from: id or folder of a 2D ultrasound model (loaded sha256-verified with ``weights_only``
            through :func:`~breastlesionseg.imaging2d.model_card2d.load_model_2d`); None: random weights.
    Returns:
        (network in train mode, ``{}`` or ``{"init_from": the given id or folder, "init_from_model_id": ...,
        "init_from_sha256": ...}``).
    Raises:
        ModelError: not a 2D ultrasound model, or unusable.
        InputError: the card's network differs from ``config``'s.
    """
    from ..imaging2d.model_card2d import load_model_2d
    from ..nn.config2d import config2d_from_dict

    if init_from is None or str(init_from) == "":
        return build_network_2d(config.arch, config.network), {}
    card = init_model_card(init_from)
    wanted = (config.arch, config2d_from_dict(config.arch, config.network).to_dict())
    if (card.arch, config2d_from_dict(card.arch, card.config).to_dict()) != wanted:
        raise InputError(f"--init-from {init_from}: the model is a {card.arch} {card.config}, the run asks for a "
                         f"{wanted[0]} {wanted[1]}; take arch and network from the model card")
    network, card = load_model_2d(init_from)
    log.info("starting from the weights of model %s (%s, sha256 %s)", card.model_id, card.arch, card.weights_sha256[:12])
    return network.train(), {"init_from": str(init_from), "init_from_model_id": card.model_id,
                             "init_from_sha256": card.weights_sha256}


def fold_config(fold_dir: str | Path) -> dict:
    """A trained fold's ``train_config.json`` (``{}`` when the fold has none yet)."""
    path = Path(fold_dir) / CONFIG_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def recorded_init_from(output_dir: str | Path, folds: list[int]) -> str | None:
    """The ``init_from`` recorded in the first of ``folds`` whose ``train_config.json`` has one (a resumed
    fine-tuning keeps its starting model), else None."""
    for fold in folds:
        value = fold_config(Path(output_dir) / f"fold_{fold}").get("init_from")
        if value:
            return str(value)
    return None


def init_model_card(init_from: str | Path):
    """The :class:`ModelCard2D` of an ``--init-from`` model, read before any weights are loaded.

    Raises:
        ModelError: not found, not a 2D model card, or not an ultrasound model (e.g. a mammography one).
    """
    from ..imaging2d.model_card2d import ModelCard2D
    from ..nn.model_paths import resolve_model

    card = ModelCard2D.read(resolve_model(init_from))
    if card.modality != "ultrasound":
        raise ModelError(f"--init-from {init_from}: model {card.model_id} is a {card.modality} model; fine-tuning "
                         "an ultrasound network needs a 2D ultrasound model (e.g. us-attunet-busbra)")
    return card


def train_fold(data_root: str | Path, fold: int, output_dir: str | Path, config: UltrasoundTrainConfig,
               resume: bool = False, init_from: str | Path | None = None, device: str = "cpu") -> Path:
    """Train on the fold's training images, early-stop on its validation images.

    Args:
        data_root: BUS-BRA folder, or a BUS-BRA-like folder without ``5-fold-cv.csv`` (folds derived from
            its cases, see :func:`~breastlesionseg.ultrasound.busbra.derived_roles`).
        fold: 0..4 (test images are the dataset's ``kFold == fold + 1``, or the held-out scanner's images
            when ``config.holdout_device`` is set; never seen here).
        output_dir: run folder; the fold's checkpoints go to ``output_dir/fold_<k>``.
        config: training configuration (written to ``fold_<k>/train_config.json``).
        resume: continue an interrupted run (its ``last.pt`` weights replace ``init_from``'s; without
            ``init_from`` the one recorded in the fold's ``train_config.json`` is used).
        init_from: id or folder of a 2D ultrasound model to start from (:func:`initial_network`); None:
            random initialisation.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (where the network trains).
    Returns:
        The fold folder (``best_weights.pt`` there is the model to keep).
    Raises:
        DatasetError: the fold has no training or no validation image.
    """
    fold_dir = Path(output_dir) / f"fold_{fold}"
    torch.manual_seed(config.loop.seed + fold)
    split = fold_split(read_busbra(data_root), fold, config.holdout_device)
    log.info("fold %d: %d train, %d validation, %d test images", fold, len(split["train"]), len(split["val"]), len(split["test"]))
    for role in ("train", "val"):
        if not split[role]:
            raise DatasetError(f"fold {fold} of '{data_root}' has no {'training' if role == 'train' else 'validation'} "
                               f"image ({len(split['train'])} train, {len(split['val'])} validation, "
                               f"{len(split['test'])} test); add images of more patients or train another fold")
    if resume:
        check_resume_settings(fold_dir, config.to_dict())  # before train_config.json is rewritten
    if not init_from and resume:
        init_from = recorded_init_from(output_dir, [fold])
    if init_from:
        init_model_card(init_from)  # a wrong model fails before the images are read
    train_images, val_images = load_images_logged(split["train"]), load_images_logged(split["val"])
    model, origin = initial_network(config, init_from)
    model = model.to(memory_format=torch.channels_last)
    fold_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(fold_dir / CONFIG_FILE, json.dumps({"fold": fold, **config.to_dict(), **origin}, indent=1), overwrite=True)
    loss_fn = UltrasoundLoss(config.seg_loss, config.lesion_loss_weight, config.malignancy_loss_weight)

    def batch_loss(net: torch.nn.Module, batch: dict) -> torch.Tensor:
        return loss_fn(net(batch["image"].contiguous(memory_format=torch.channels_last)), batch)

    run_training(model, make_epoch_batches(train_images, config), batch_loss,
                 make_validator(val_images, config.input_size_px), fold_dir, config.loop, resume=resume, device=device,
                 run_settings=config.to_dict())
    return fold_dir


def run_split(data_root: str | Path, fold_dir: Path, fold: int) -> dict[str, list]:
    """The split a trained fold used (its ``train_config.json`` says whether a scanner was held out; a folder
    without one is a plain fold)."""
    return fold_split(read_busbra(data_root), fold, fold_config(fold_dir).get("holdout_device", ""))


def load_images_logged(records):
    """:func:`load_images` with a log line."""
    from .training_data import load_images

    images = load_images(records)
    log.info("loaded %d images (%d with a lesion-free region for negatives)", len(images), sum(bool(i.free_regions) for i in images))
    return images
