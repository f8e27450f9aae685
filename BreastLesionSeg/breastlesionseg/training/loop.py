"""The training loop: data -> cached preprocessed cases -> patches -> optimizer steps -> validation
-> checkpoints -> model folder + report.

Output folder layout (``TrainConfig.output_dir``)::

    weights.pt, model_card.json      the trained model (best validation Dice, else the last epoch),
                                     written atomically at the end: ``load_model(output_dir)`` works
    checkpoints/last.pt              after every epoch (model, optimizer, scheduler, scaler, epoch,
                                     history, RNG): ``--resume`` continues from here
    checkpoints/best.pt              the best epoch so far (by validation Dice)
    training_report.json / .md       time, energy, carbon footprint, per-epoch metrics
    training_curves.png              loss and IoU per epoch (Wang et al. 2025 Figs 7-8)

An interrupted run leaves only ``checkpoints/`` (needed to resume) and no model files.
Under ``torchrun`` every rank trains on its share of the patches (DistributedSampler, DDP gradient
averaging) and validates its share of the cases; rank 0 alone writes files and reports progress.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..errors import DatasetError, InputError, ModelError
from ..io.atomic import write_atomic
from ..system_memory import available_memory_bytes
from .config import TrainConfig
from .crossval import split_cases
from .dataset import Dataset
from .distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    broadcast_flag,
    cleanup,
    init_distributed,
    max_weight_difference,
    wrap_for_training,
)
from .losses import SegmentationLoss
from .preprocess import PreparedCase, prepare_case
from .progress import TrainingProgress
from .report import EnergyMeter, plot_curves, write_report
from .sampling import PatchDataset
from .transforms import build_augmentation
from .validate import validate_cases

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
CHECKPOINT_FORMAT = 1
#: cases loaded before the training cache's size is projected (and checked against the free memory)
CACHE_PROJECTION_CASES = 8

#: config fields a resumed run must share with its checkpoint
RESUME_KEYS = ("arch", "expansion", "base_width", "levels", "act", "channels", "normalization", "patch_size",
               "target_spacing_mm", "crop_margin_mm", "loss", "folds", "fold", "seed", "data_dir")


@dataclass
class TrainResult:
    """What :func:`train` returns (on every rank; files are written by rank 0 only).

    Attributes:
        output_dir: the model folder.
        history: one dict per epoch (epoch, train_loss, val_loss, val_dice, val_iou, lr, epoch_time_s).
        best_epoch: 1-based epoch of the kept weights.
        best_val_dice: its validation Dice (None without validation).
        report: the training report (JSON-ready).
        network: the trained network with the kept weights (CPU, eval mode).
        train_ids, val_ids: the case split.
    """

    output_dir: Path
    history: list[dict[str, Any]]
    best_epoch: int
    best_val_dice: float | None
    report: dict[str, Any]
    network: torch.nn.Module
    train_ids: list[str] = field(default_factory=list)
    val_ids: list[str] = field(default_factory=list)


def resolve_device(name: str, ctx: DistContext | None = None) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without CUDA is an :class:`InputError`."""
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was requested but no CUDA GPU is available (use --device cpu or auto)")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", ctx.local_rank if ctx is not None else 0)
    return torch.device("cpu")


def _save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename (atomic; a full disk keeps the old one)."""
    write_atomic(path, lambda tmp: torch.save(state, tmp), overwrite=True)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint (tensors and plain containers only; see :mod:`.checkpoint`)."""
    from .checkpoint import read_checkpoint

    return read_checkpoint(path, CHECKPOINT_FORMAT)


def _load_cases(ds: Dataset, ids: list[str], config: TrainConfig, progress: TrainingProgress | None,
                start: float, width: float) -> dict[str, PreparedCase]:
    """Read and preprocess the cases (the in-memory training cache, images in ``config.cache_dtype``)."""
    manifest = ds.load_manifest()
    out: dict[str, PreparedCase] = {}
    for i, cid in enumerate(ids):
        record = manifest.get(cid)
        if record is None:
            raise DatasetError(f"case '{cid}' is not in dataset '{ds.root}'")
        data = ds.load_case(record)
        try:
            case = prepare_case(cid, data.exam, data.lesion_labels, data.breast_mask, config.channels,
                                config.normalization, config.target_spacing_mm, config.crop_margin_mm)
        except InputError as exc:
            raise DatasetError(f"case '{cid}' of '{ds.root}' cannot be prepared for training: {exc}") from exc
        out[cid] = dataclasses.replace(case, image=case.image.astype(config.cache_dtype, copy=False))
        if len(out) == CACHE_PROJECTION_CASES:
            _warn_if_cache_exceeds_memory(out, len(ids), config.cache_dtype)
        if progress is not None:
            progress.stage("preprocess", start + width * (i + 1) / len(ids), f"case {cid} ({i + 1}/{len(ids)})")
    return out


def _warn_if_cache_exceeds_memory(loaded: dict[str, PreparedCase], n_cases: int, cache_dtype: str) -> None:
    """Warn early (after a few cases) when the projected training cache is larger than the free memory."""
    available = available_memory_bytes()
    projected = sum(c.nbytes for c in loaded.values()) / len(loaded) * (n_cases - len(loaded))
    if available is None or projected <= available:
        return
    advice = ("--cache-dtype float16 halves the images" if cache_dtype == "float32"
              else "train on fewer cases or on a machine with more memory")
    log.warning("the training cache of %d cases will need about %.1f GB more (projected from the first %d), but only "
                "%.1f GB of memory are available: the run may be killed for memory; %s", n_cases, projected / 1e9,
                len(loaded), available / 1e9, advice)


def _build_network(config: TrainConfig) -> tuple[torch.nn.Module, dict[str, Any]]:
    """New network from the config, or the network of ``init_from`` (fine-tuning)."""
    from ..nn import build_network, load_model

    if config.init_from:
        try:
            network, card = load_model(config.init_from, device="cpu")
        except (ModelError, InputError) as exc:
            raise InputError(f"--init-from {config.init_from!r}: {exc}") from exc
        if list(card.input_channels) != list(config.channels):
            raise InputError(f"--init-from model '{card.model_id}' takes channels {card.input_channels}, but the "
                             f"training uses {list(config.channels)} (pass --channels {' '.join(card.input_channels)})")
        if tuple(card.target_spacing_mm) != tuple(config.target_spacing_mm):
            log.warning("fine-tuning '%s' (trained at %s mm) at %s mm", card.model_id, card.target_spacing_mm,
                        config.target_spacing_mm)
        if card.normalization != config.normalization:
            log.warning("fine-tuning '%s' (trained on %s-normalised channels) with %s normalisation", card.model_id,
                        card.normalization, config.normalization)
        log.info("fine-tuning from model '%s' (%s)", card.model_id, card.arch)
        network.train()
        return network, {"arch": card.arch, "config": dict(card.config), "init_from": card.model_id,
                         "init_from_sha256": card.weights_sha256}
    network = build_network(config.arch, config.network_config())
    return network, {"arch": config.arch, "config": config.network_config(), "init_from": None}


def _check_output(config: TrainConfig, ctx: DistContext) -> Path | None:
    """Refuse to clobber a finished model; return the checkpoint to resume from (or None)."""
    out = config.output_dir
    last = out / CHECKPOINT_DIR / LAST_CHECKPOINT
    if out.exists() and not out.is_dir():
        raise InputError(f"--output '{out}' is a file, not a folder")
    if config.resume:
        if last.is_file():
            return last
        log.warning("--resume: no checkpoint at '%s'; starting a new training", last)
        return None
    if (out / "model_card.json").exists() and not config.force:
        raise InputError(f"--output '{out}' already holds a trained model; use --force to replace it or --resume")
    if last.is_file() and not config.force:
        raise InputError(f"--output '{out}' holds checkpoints of an unfinished training; use --resume to continue "
                         "it or --force to start over")
    if config.force and ctx.is_main and (out / CHECKPOINT_DIR).is_dir():
        shutil.rmtree(out / CHECKPOINT_DIR)
    return None


def _model_card(config: TrainConfig, net_info: dict[str, Any], metrics: dict[str, Any], training_data: str,
                extra: dict[str, Any]):
    from ..nn import ModelCard

    demo_note = ("DEMONSTRATION MODEL trained on synthetic phantoms only; not for clinical use. "
                 if config.demo else "")
    return ModelCard(
        model_id=config.model_id,
        arch=net_info["arch"],
        config=net_info["config"],
        input_channels=list(config.channels),
        normalization=config.normalization,
        normalization_region="breast_mask",
        target_spacing_mm=tuple(config.target_spacing_mm),
        patch_size=tuple(config.patch_size),
        overlap=config.val_overlap,
        threshold=config.threshold,
        training_data=training_data,
        validation_metrics=metrics,
        demo=config.demo,
        training_command=config.training_command,
        description=(demo_note + f"{net_info['arch']} trained with breastlesionseg train ({config.loss} loss, "
                     f"{config.epochs} epochs, patch {'x'.join(map(str, config.patch_size))} at "
                     f"{'x'.join(f'{s:g}' for s in config.target_spacing_mm)} mm on the optimized-volume crop)."),
        extra=extra,
    )


def _describe_data(ds: Dataset, ids: list[str]) -> str:
    manifest = ds.load_manifest()
    recs = [manifest.get(i) for i in ids]
    n_lesions = sum(r.lesion_count for r in recs if r is not None)
    sources = sorted({(r.source or "").split(" ")[0][:60] for r in recs if r is not None})
    return (f"{len(ids)} case(s) of dataset '{ds.root.name}' ({n_lesions} lesions); sources: "
            + ", ".join(sources[:5]) + (" ..." if len(sources) > 5 else ""))


def train(config: TrainConfig, json_stream: IO[str] | None = None) -> TrainResult:
    """Train a lesion model (see the module docstring for what is written).

    Args:
        config: the run configuration.
        json_stream: where JSON progress lines go with ``config.progress == "json"`` (default stdout).

    Returns:
        :class:`TrainResult`.

    Raises:
        DatasetError: unusable dataset or case.
        InputError: bad configuration, output folder conflicts, unusable ``init_from`` / checkpoint.
    """
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    want_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    ctx = init_distributed(use_cuda=want_cuda)
    try:
        return _train(config, ctx, json_stream)
    finally:
        cleanup(ctx)


def _train(config: TrainConfig, ctx: DistContext, json_stream: IO[str] | None) -> TrainResult:
    device, use_amp = _training_device(config, ctx)
    resume_from = _check_output(config, ctx)
    barrier(ctx)
    ds, train_ids, val_ids = _dataset_split(config)
    ckpt = _checked_resume(config, resume_from, train_ids, val_ids)
    start_epoch = int(ckpt["epoch"]) if ckpt is not None else 0
    progress = TrainingProgress(config.progress if ctx.is_main else "none", config.epochs, start_epoch, json_stream)
    progress.stage("preprocess", 0.0, f"{len(train_ids)} training + {len(val_ids)} validation cases")
    t_prep = time.monotonic()
    cache = _load_cases(ds, sorted(set(train_ids) | set(val_ids)), config, progress if ctx.is_main else None,
                        0.0, 1.0)
    prep_s = time.monotonic() - t_prep
    log.info("preprocessed %d case(s) in %.1f s (%.1f MB cached)", len(cache), prep_s,
             sum(c.nbytes for c in cache.values()) / 1e6)
    run = _TrainingRun.build(config, ctx, device, use_amp)
    if ckpt is not None:
        run.restore(ckpt, resume_from, use_amp)
    run.make_loader([cache[i] for i in train_ids])
    val_cases = [cache[i] for k, i in enumerate(val_ids) if k % ctx.world_size == ctx.rank]
    run.meter.start(run.elapsed_before, run.cpu_before)
    t_run = time.monotonic()
    stopped_early = False
    for epoch in range(start_epoch, config.epochs):
        over = run.epoch(epoch, val_cases, bool(val_ids), t_run, progress, train_ids, val_ids)
        if over and epoch + 1 < config.epochs:
            log.warning("time budget of %.0f s reached after epoch %d of %d: stopping", config.max_time_s,
                        epoch + 1, config.epochs)
            stopped_early = True
            break
        barrier(ctx)
    return _finish_training(run, ds, train_ids, val_ids, prep_s, stopped_early, progress)


def _training_device(config: TrainConfig, ctx: DistContext) -> tuple[torch.device, bool]:
    """The device of this rank and whether mixed precision is used (CUDA only)."""
    device = resolve_device(config.device, ctx)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    use_amp = bool(config.amp and device.type == "cuda")
    if config.amp and not use_amp:
        log.info("--amp ignored: mixed precision is used on CUDA only")
    return device, use_amp


def _dataset_split(config: TrainConfig) -> tuple[Dataset, list[str], list[str]]:
    """The dataset and its training / validation case ids; DatasetError when there is nothing to train on."""
    ds = Dataset(config.data_dir)
    if not ds.exists():
        raise DatasetError(f"--data '{config.data_dir}' is not a dataset (no dataset.json); build one with "
                           "'breastlesionseg dataset add'")
    all_ids = ds.load_manifest().ids()
    if not all_ids:
        raise DatasetError(f"dataset '{config.data_dir}' has no case")
    train_ids, val_ids = split_cases(all_ids, config.folds, config.fold, config.val_fraction, config.seed)
    return ds, train_ids, val_ids


def _checked_resume(config: TrainConfig, resume_from: Path | None, train_ids: list[str],
                    val_ids: list[str]) -> dict[str, Any] | None:
    """The checkpoint to resume from, checked against the settings and the cases (InputError when they differ)."""
    ckpt = load_checkpoint(resume_from) if resume_from is not None else None
    if ckpt is None:
        return None
    old = ckpt["config"]
    now = config.to_dict()
    diff = [k for k in RESUME_KEYS if json.dumps(old.get(k)) != json.dumps(now.get(k))]
    if diff:
        raise InputError(f"--resume: the checkpoint '{resume_from}' was made with other settings for {diff} "
                         f"({ {k: old.get(k) for k in diff} }); use the same settings or --force to start over")
    if ckpt["train_ids"] != train_ids or ckpt["val_ids"] != val_ids:
        raise InputError(f"--resume: the dataset's cases changed since '{resume_from}' was written")
    _check_resume_keeps_model(config, int(ckpt["epoch"]))
    return ckpt


def _check_resume_keeps_model(config: TrainConfig, ckpt_epoch: int) -> None:
    """A resumed run never silently replaces a finished model folder's files (they may hold a calibrated card).

    Raises:
        InputError: the folder holds a model card and the checkpoint has no epoch left to train.
    """
    card = config.output_dir / "model_card.json"
    if ckpt_epoch >= config.epochs and card.exists():
        raise InputError(f"--resume: '{config.output_dir}' already holds the model of this training (epoch "
                         f"{ckpt_epoch} of --epochs {config.epochs}); nothing is left to train and its model files "
                         "are kept. Raise --epochs to train on, or use --force to start over")
    if ckpt_epoch >= config.epochs:
        log.info("checkpoint already at epoch %d of %d: only writing the model", ckpt_epoch, config.epochs)
    elif card.exists():
        log.warning("--resume: training on from epoch %d to %d; the model files in '%s' (model_card.json, weights) "
                    "will be replaced when it ends", ckpt_epoch, config.epochs, config.output_dir)


def training_augmentation(config: TrainConfig):
    """The MONAI augmentation of ``config``'s training patches (:func:`~.transforms.build_augmentation`)."""
    return build_augmentation(config.rotate_deg, config.flip_prob, config.intensity_scale,
                              config.acquisition_augment_prob, config.blanked_channels(), config.subtraction_only_prob,
                              config.zoom_out_prob)


@dataclass
class _TrainingRun:
    """The mutable state of one training run: network, optimiser, loader, history, best epoch, meter."""

    config: TrainConfig
    ctx: DistContext
    device: torch.device
    use_amp: bool
    network: torch.nn.Module
    net_info: dict[str, Any]
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    loss_fn: SegmentationLoss
    val_loss_fn: SegmentationLoss
    meter: EnergyMeter
    history: list[dict[str, Any]] = field(default_factory=list)
    best_dice: float | None = None
    best_epoch: int = 0
    elapsed_before: float = 0.0
    cpu_before: float = 0.0
    dataset: Any = None
    sampler: Any = None
    generator: Any = None
    loader: Any = None

    @classmethod
    def build(cls, config: TrainConfig, ctx: DistContext, device: torch.device, use_amp: bool) -> "_TrainingRun":
        """Seeded network (wrapped for DDP), Adam, cosine schedule, grad scaler and losses."""
        torch.manual_seed(config.seed)
        network, net_info = _build_network(config)
        network.to(device)
        model = wrap_for_training(network, ctx, device)
        optimizer = torch.optim.Adam(network.parameters(), lr=config.lr, betas=(0.95, 0.999),
                                     weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=config.min_lr)
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        loss_fn = SegmentationLoss(config.loss, config.hybrid_weights, config.focal_gamma,
                                   config.act_weight if (config.act and net_info["config"].get("act", True)) else 0.0)
        val_loss_fn = SegmentationLoss(config.loss, config.hybrid_weights, config.focal_gamma, 0.0)
        return cls(config, ctx, device, use_amp, network, net_info, model, optimizer, scheduler, scaler, loss_fn,
                   val_loss_fn, EnergyMeter(use_gpu=device.type == "cuda"))

    def restore(self, ckpt: dict[str, Any], resume_from: Path | None, use_amp: bool) -> None:
        """Weights, optimiser, schedule, history and RNG state from a checkpoint."""
        self.network.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scheduler.T_max = self.config.epochs
        if use_amp and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.history = list(ckpt["history"])
        self.best_dice, self.best_epoch = ckpt.get("best_val_dice"), int(ckpt.get("best_epoch", 0))
        self.elapsed_before, self.cpu_before = float(ckpt.get("elapsed_s", 0.0)), float(ckpt.get("cpu_s", 0.0))
        torch.set_rng_state(ckpt["rng_torch"])
        log.info("resumed from '%s' after epoch %d (best val Dice %s at epoch %d)", resume_from, int(ckpt["epoch"]),
                 self.best_dice, self.best_epoch)

    def make_loader(self, train_cases: list) -> None:
        """Patch dataset with augmentation, a (distributed) sampler and the loader."""
        config, ctx = self.config, self.ctx
        self.dataset = PatchDataset(train_cases, config.patch_size, config.patches_per_case, config.pos_fraction,
                                    training_augmentation(config),
                                    seed=config.seed, positive_sampling=config.positive_sampling)
        if ctx.distributed:
            self.sampler = DistributedSampler(self.dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                              seed=config.seed)
        else:
            self.generator = torch.Generator()
            self.sampler = RandomSampler(self.dataset, generator=self.generator)
        self.loader = DataLoader(self.dataset, batch_size=config.batch_size, sampler=self.sampler, num_workers=0,
                                 drop_last=False)

    def train_epoch(self, epoch: int, progress: TrainingProgress) -> tuple[float, float, Any]:
        """One pass over the patches; ``(mean training loss over all ranks, learning rate used, last loss parts)``."""
        config, ctx, device = self.config, self.ctx, self.device
        self.dataset.set_epoch(epoch, ctx.rank)
        if ctx.distributed:
            self.sampler.set_epoch(epoch)
        else:
            self.generator.manual_seed(config.seed * 9973 + epoch)
        self.model.train()
        loss_sum, n_batches, parts = 0.0, 0, None
        steps = len(self.loader)
        for step, (image, label, act) in enumerate(self.loader):
            image, label, act = image.to(device), label.to(device), act.to(device)
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, enabled=self.use_amp):
                seg_logits, act_logits = self.model(image)
            parts = self.loss_fn(seg_logits, label, act_logits, act)
            self.scaler.scale(parts.total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            loss_sum += float(parts.total.detach())
            n_batches += 1
            if ctx.is_main:
                progress.batch(epoch, step, steps, loss_sum / n_batches)
        total, count = all_reduce_sum([loss_sum, float(n_batches)], ctx, device)
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.scheduler.step()
        return total / max(count, 1.0), lr, parts

    def validate(self, val_cases: list) -> tuple[float, float, float]:
        """Mean validation Dice, IoU and loss over all ranks' cases."""
        config, device = self.config, self.device
        vres = validate_cases(self.network, val_cases, config.patch_size, config.val_overlap, config.threshold,
                              device, self.use_amp, config.mask_to_breast,
                              loss_fn=lambda lg, tg: self.val_loss_fn(lg, tg).total)
        sums = all_reduce_sum([sum(c["dice"] for c in vres.per_case), sum(c["iou"] for c in vres.per_case),
                               sum(c["loss"] for c in vres.per_case), float(len(vres.per_case))], self.ctx, device)
        n = max(sums[3], 1.0)
        return sums[0] / n, sums[1] / n, sums[2] / n

    def epoch(self, epoch: int, val_cases: list, has_val: bool, t_run: float, progress: TrainingProgress,
              train_ids: list[str], val_ids: list[str]) -> bool:
        """Train, validate when due, record, checkpoint; returns whether the time budget is used up."""
        config, ctx, device = self.config, self.ctx, self.device
        t_epoch = time.monotonic()
        train_loss, lr, parts = self.train_epoch(epoch, progress)
        train_s = time.monotonic() - t_epoch
        over = broadcast_flag(config.max_time_s is not None and time.monotonic() - t_run > config.max_time_s,
                              ctx, device)
        val_dice = val_iou = val_loss = None
        if has_val and ((epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs or over):
            val_dice, val_iou, val_loss = self.validate(val_cases)
        self.meter.sample()
        epoch_s = time.monotonic() - t_epoch
        self.history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "val_dice": val_dice,
                             "val_iou": val_iou, "lr": lr, "epoch_time_s": epoch_s, "train_time_s": train_s,
                             "val_time_s": epoch_s - train_s, "loss_parts": parts.parts if parts is not None else {}})
        improved = val_dice is not None and (self.best_dice is None or val_dice > self.best_dice)
        if improved:
            self.best_dice, self.best_epoch = val_dice, epoch + 1
        elif not has_val:
            self.best_epoch = epoch + 1
        cpu_all = all_reduce_sum([self.meter.cpu_s], ctx, device)[0]
        if ctx.is_main:
            self.checkpoint(epoch, improved, cpu_all, train_ids, val_ids)
            progress.epoch(epoch, train_loss, val_dice, val_iou, val_loss, lr, epoch_s)
        return over

    def checkpoint(self, epoch: int, improved: bool, cpu_all: float, train_ids: list[str], val_ids: list[str]) -> None:
        """``last.pt`` every epoch (resumable), ``best.pt`` (weights only) when validation improved."""
        ckpt_dir = self.config.output_dir / CHECKPOINT_DIR
        state = {
            "format": CHECKPOINT_FORMAT, "epoch": epoch + 1, "model": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.use_amp else {}, "history": self.history,
            "best_val_dice": self.best_dice, "best_epoch": self.best_epoch, "config": self.config.to_dict(),
            "train_ids": train_ids, "val_ids": val_ids, "rng_torch": torch.get_rng_state(),
            "elapsed_s": self.meter.wall_s, "cpu_s": cpu_all,
            "net_info": {k: v for k, v in self.net_info.items() if k != "config"},
        }
        _save_checkpoint(state, ckpt_dir / LAST_CHECKPOINT)
        if improved:
            _save_checkpoint({**state, "optimizer": {}, "scheduler": {}}, ckpt_dir / BEST_CHECKPOINT)


def _finish_training(run: _TrainingRun, ds: Dataset, train_ids: list[str], val_ids: list[str], prep_s: float,
                     stopped_early: bool, progress: TrainingProgress) -> TrainResult:
    """Keep the best weights, then (rank 0) write the model folder, the report and the curves."""
    config, ctx, device, network, history = run.config, run.ctx, run.device, run.network, run.history
    replica_diff = max_weight_difference(network, ctx, device)
    if replica_diff > 0:
        log.warning("DDP replicas differ by up to %.3g after training", replica_diff)
    barrier(ctx)
    ckpt_dir = config.output_dir / CHECKPOINT_DIR
    if run.best_dice is not None and (ckpt_dir / BEST_CHECKPOINT).is_file():
        network.load_state_dict(load_checkpoint(ckpt_dir / BEST_CHECKPOINT)["model"])
    network.to("cpu").eval()
    cpu_all = all_reduce_sum([run.meter.cpu_s], ctx, torch.device("cpu") if not ctx.distributed or ctx.backend == "gloo"
                             else device)[0]
    energy = run.meter.summary(cpu_all, n_gpus=ctx.world_size if device.type == "cuda" else 0)
    best_row = next((h for h in history if h["epoch"] == run.best_epoch), history[-1] if history else {})
    metrics = {"split": "k-fold" if config.folds > 1 else "hold-out", "n_val_cases": len(val_ids),
               "val_dice": best_row.get("val_dice"), "val_iou": best_row.get("val_iou"), "best_epoch": run.best_epoch,
               "evaluation": "full-crop sliding-window Dice/IoU on the model grid, lesions restricted to the breast"}
    report = {
        "model_id": config.model_id, "data_dir": str(config.data_dir), "output_dir": str(config.output_dir),
        "n_train_cases": len(train_ids), "n_val_cases": len(val_ids), "train_ids": train_ids, "val_ids": val_ids,
        "folds": config.folds, "fold": config.fold, "epochs": config.epochs, "epochs_done": len(history),
        "stopped_early": stopped_early, "best_epoch": run.best_epoch, "best_val_dice": run.best_dice,
        "best_val_iou": best_row.get("val_iou"), "device": str(device), "world_size": ctx.world_size,
        "amp": run.use_amp, "preprocess_time_s": prep_s, "replica_max_weight_diff": replica_diff, "energy": energy,
        "history": history, "config": config.to_dict(), "network": {k: v for k, v in run.net_info.items()},
        "n_parameters": int(sum(p.numel() for p in network.parameters())),
        "training_command": config.training_command,
    }
    if ctx.is_main:
        _write_model_folder(run, ds, train_ids, metrics, report, energy, progress)
    barrier(ctx)
    return TrainResult(config.output_dir, history, run.best_epoch, run.best_dice, report, network, train_ids, val_ids)


def _write_model_folder(run: _TrainingRun, ds: Dataset, train_ids: list[str], metrics: dict[str, Any],
                        report: dict[str, Any], energy: dict[str, Any], progress: TrainingProgress) -> None:
    """Rank 0: model card + weights, training report and curves into the output folder."""
    config = run.config
    progress.stage("save", 0.0, "writing the model folder")
    training_data = config.training_data or _describe_data(ds, train_ids)
    extra = {"training": {k: report[k] for k in ("n_train_cases", "n_val_cases", "epochs", "epochs_done",
                                                 "best_epoch", "folds", "fold", "n_parameters")}
             | {"loss": config.loss, "seed": config.seed, "crop_margin_mm": config.crop_margin_mm,
                "init_from": run.net_info.get("init_from"), "training_time_s": energy["training_time_s"],
                "carbon_footprint_kg_co2": energy["carbon_footprint_kg_co2"]}}
    card = _model_card(config, run.net_info, metrics, training_data, extra)
    save_model_files(run.network, card, config.output_dir)
    write_report(report, config.output_dir)
    if run.history:
        plot_curves(run.history, config.output_dir / "training_curves.png", title=config.model_id)
    progress.stage("save", 1.0, str(config.output_dir))
    progress.done(str(config.output_dir))


def save_model_files(network: torch.nn.Module, card, output_dir: Path) -> None:
    """Write ``weights.pt`` + ``model_card.json`` into ``output_dir`` beside other files (checkpoints, reports).

    ``nn.save_model`` assembles a complete model folder atomically; it is built in a hidden temporary
    folder inside ``output_dir`` and its two files are moved into ``output_dir`` (weights first,
    card last, so a folder with a card always has matching weights).
    """
    from ..nn import CARD_FILE, save_model

    output_dir.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix=".model-", dir=output_dir))
    try:
        folder = save_model(network, card, tmp_root / "model")
        os.replace(folder / card.weights_file, output_dir / card.weights_file)
        os.replace(folder / CARD_FILE, output_dir / CARD_FILE)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
