"""Train a fold's lesion-crop malignancy classifier (:mod:`.crop_classifier`) on BUS-BRA(-like) images, resumably.

Training and validation crops are cut around the lesion the fold's own network predicts on each image
(through :func:`predict_image`, as the product will; the expert outline only where it finds none): the
product applies the classifier to predicted outlines, which are smoother than expert ones, and a classifier
trained on expert outlines lost 0.06-0.07 test AUC on predicted ones (folds 0 and 1). The epoch with the best
malignancy ROC AUC on the fold's validation crops is kept. Images of unknown
pathology are left out; the fold's test images are never read. A model has one classifier per margin of
:data:`~breastlesionseg.ultrasound.config.CROP_CLASSIFIER_MARGINS` (an ensemble, its members numbered from 0).
Files: ``fold_<k>/crop_classifier/`` for member 0, ``fold_<k>/crop_classifier_<m>/`` for member m > 0
(``last.pt``, ``best_weights.pt``, ``history.json`` of :mod:`~breastlesionseg.imaging2d.training_loop`, and
``train_config.json``).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DatasetError, InputError
from ..imaging2d.augment import AugmentConfig, augment_batch
from ..imaging2d.metrics2d import roc_auc
from ..imaging2d.training_loop import check_resume_settings, run_complete, run_training
from ..io.atomic import write_text_atomic
from ..nn.config2d import ResNeXtClassifier2DConfig
from ..nn.resnext_classifier2d import ResNeXtClassifier2D
from .config import CROP_CLASSIFIER_MARGINS, CropClassifierTrainConfig
from .crop_classifier import classifier_input, mirrored_mean_logits
from .train import fold_config, load_images_logged, run_split

log = logging.getLogger(__name__)

#: sub-folder of a fold folder holding the run of the classifier ensemble's member 0 (member m: ``<it>_<m>``)
CLASSIFIER_DIR = "crop_classifier"
CONFIG_FILE = "train_config.json"
#: stronger geometric augmentation than the segmentation network's: the crop box itself is jittered by it
CROP_AUGMENT = AugmentConfig(rotate_deg=15.0, zoom=0.2, shift_fraction=0.08)


def member_dir(fold_dir: Path, member: int) -> Path:
    """The folder of the run of the classifier ensemble's member ``member`` of a fold."""
    return Path(fold_dir) / (CLASSIFIER_DIR if member == 0 else f"{CLASSIFIER_DIR}_{member}")


def member_dirs(fold_dir: Path) -> list[Path]:
    """The run folders of a fold's classifier members that exist, member 0 first (consecutive members only)."""
    folders = []
    while member_dir(fold_dir, len(folders)).is_dir():
        folders.append(member_dir(fold_dir, len(folders)))
    return folders


def predicted_mask(model, image) -> np.ndarray:
    """The (H, W) lesion mask ``model`` predicts on a loaded image (its expert mask when the prediction is empty)."""
    from ..imaging2d.image_io import read_image_2d
    from .predict import predict_image

    mask = predict_image(read_image_2d(image.record.image_path).pixels, model, with_heat_map=False).mask.astype(bool)
    return mask if mask.any() else image.mask


def crop_tensors(images: list, config: CropClassifierTrainConfig, model) -> tuple[torch.Tensor, torch.Tensor]:
    """((N, 2, S, S) inputs, (N,) 0/1 malignant) of the images of known pathology, around the lesions ``model``
    (the fold's :class:`UltrasoundModel`) predicts."""
    inputs, labels = [], []
    for image in images:
        if image.record.malignant is None:
            continue
        mask = predicted_mask(model, image)
        inputs.append(classifier_input(image.unit_pixels, mask, config.margin, config.size_px))
        labels.append(float(bool(image.record.malignant)))
    if not inputs:
        return torch.zeros((0, 2, config.size_px, config.size_px)), torch.zeros(0)
    return torch.stack(inputs), torch.tensor(labels)


def _check_classes(labels: torch.Tensor, role: str, fold: int) -> None:
    counts = [int((labels == 0).sum()), int((labels == 1).sum())]
    if min(counts) < 2:
        raise DatasetError(f"fold {fold}: the {role} images of known pathology hold {counts[0]} benign and {counts[1]} "
                           "malignant lesions; the crop classifier needs at least 2 of each")


def make_epoch_batches(inputs: torch.Tensor, labels: torch.Tensor, config: CropClassifierTrainConfig):
    """``epoch -> iterator of (augmented (B, 2, S, S) inputs, (B,) labels)`` (seeded by the epoch)."""
    def batches(epoch: int):
        generator = torch.Generator().manual_seed(config.loop.seed * 100_003 + epoch)
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(order) - 1, config.batch_size):
            index = order[start:start + config.batch_size]
            if len(index) < 2:
                break
            image, mask = augment_batch(inputs[index, :1], inputs[index, 1:], generator, CROP_AUGMENT)
            yield torch.cat([image, mask], 1), labels[index]

    return batches


def make_validator(inputs: torch.Tensor, labels: torch.Tensor):
    """``model -> {"score": malignancy AUC, "malignancy_auc"}`` on the validation crops (mirror-averaged logits)."""
    def validate(model: torch.nn.Module) -> dict[str, float]:
        logits = torch.cat([mirrored_mean_logits(model, inputs[i:i + 128]) for i in range(0, len(inputs), 128)])
        auc = roc_auc(logits.numpy(), labels.numpy())
        return {"score": auc, "malignancy_auc": auc}

    return validate


def train_crop_classifier(data_root: str | Path, fold: int, run_dir: str | Path,
                          config: CropClassifierTrainConfig | None = None, resume: bool = False, member: int = 0,
                          device: str = "cpu") -> Path:
    """Train member ``member`` of the crop-classifier ensemble of ``run_dir/fold_<k>`` on that fold's split;
    returns its folder.

    Args:
        data_root: BUS-BRA folder (or a BUS-BRA-like folder, as for ``train-ultrasound``).
        fold: the fold; its split (and a held-out scanner) is the one its segmentation network used.
        run_dir: the ultrasound run folder (``fold_<k>/train_config.json`` must exist).
        config: training settings (written to the member's ``train_config.json``; default: the member's margin
            of ``CROP_CLASSIFIER_MARGINS``).
        resume: continue an interrupted run.
        member: the ensemble member (its folder, its seed and, by default, its margin).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (where the classifier trains; the fold's
            network predicts the training masks on the CPU).
    Raises:
        DatasetError: the fold was not trained, or lacks images of either class.
        InputError: ``member`` is not an index of ``CROP_CLASSIFIER_MARGINS``, or member ``member - 1`` is missing.
    """
    from .evaluate import load_fold_model

    fold_dir = Path(run_dir) / f"fold_{fold}"
    if not 0 <= member < len(CROP_CLASSIFIER_MARGINS):
        raise InputError(f"crop classifier member must be in 0..{len(CROP_CLASSIFIER_MARGINS) - 1}; got {member}")
    if member > 0 and not member_dir(fold_dir, member - 1).is_dir():
        raise InputError(f"train crop classifier member {member - 1} of '{fold_dir}' before member {member}")
    config = config or CropClassifierTrainConfig(margin=CROP_CLASSIFIER_MARGINS[member])
    if not fold_config(fold_dir):
        raise DatasetError(f"'{fold_dir}' holds no trained fold (train_config.json); run train-ultrasound first")
    out = member_dir(fold_dir, member)
    if resume:
        check_resume_settings(out, config.to_dict())  # before its train_config.json is rewritten
    if resume and run_complete(out, config.loop):
        log.info("fold %d crop classifier %d: finished in '%s', nothing to resume", fold, member, out)
        return out
    split = run_split(data_root, fold_dir, fold)
    network = load_fold_model(fold_dir).without(malignancy_model=True, crop_classifier=True)  # masks only
    train_inputs, train_labels = crop_tensors(load_images_logged(split["train"]), config, network)
    val_inputs, val_labels = crop_tensors(load_images_logged(split["val"]), config, network)
    _check_classes(train_labels, "training", fold)
    _check_classes(val_labels, "validation", fold)
    log.info("fold %d crop classifier %d (margin %g): %d training crops (%d malignant), %d validation crops", fold,
             member, config.margin, len(train_labels), int(train_labels.sum()), len(val_labels))
    torch.manual_seed(config.loop.seed + fold + 1000 * member)
    model = ResNeXtClassifier2D(ResNeXtClassifier2DConfig.from_dict(config.network)).to(memory_format=torch.channels_last)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / CONFIG_FILE, json.dumps({"fold": fold, **config.to_dict()}, indent=1), overwrite=True)
    pos_weight = (train_labels == 0).sum() / (train_labels == 1).sum()

    def batch_loss(net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, labels = batch
        logits = net(inputs.contiguous(memory_format=torch.channels_last)).float()
        return F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight.to(logits.device))

    run_training(model, make_epoch_batches(train_inputs, train_labels, config), batch_loss,
                 make_validator(val_inputs, val_labels), out, config.loop, resume=resume, device=device,
                 run_settings=config.to_dict())
    return out


def train_crop_classifiers(data_root: str | Path, fold: int, run_dir: str | Path, resume: bool = False,
                           device: str = "cpu") -> list[Path]:
    """Train every member of the fold's crop-classifier ensemble (``CROP_CLASSIFIER_MARGINS``) in turn on ``device``;
    with ``resume`` a finished member is left as it is. Returns their folders."""
    return [train_crop_classifier(data_root, fold, run_dir, resume=resume, member=member, device=device)
            for member in range(len(CROP_CLASSIFIER_MARGINS))]


def read_classifier_config(run_folder: Path) -> dict | None:
    """The ``train_config.json`` of a classifier member's run folder (None when it has none)."""
    path = Path(run_folder) / CONFIG_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
