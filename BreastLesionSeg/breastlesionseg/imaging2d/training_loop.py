"""Resumable training loop for 2D networks: checkpoint every epoch, cosine learning rate, early stopping.

The loop is task-agnostic: the caller gives the batches of an epoch, the loss of a batch and a
validation function returning metrics with a ``"score"`` (higher is better). On a CUDA device the loop moves
each batch there before the loss; the validation function sees a model that takes and returns CPU tensors,
so callers' code is the same on every device. Checkpoints always hold CPU tensors. Files in
``checkpoint_dir``:

- ``last.pt``: model, optimizer, epoch counters and history (resume point; written atomically
  after every epoch, loaded with ``weights_only=True``).
- ``best_weights.pt``: ``state_dict`` of the epoch with the best validation score.
- ``history.json``: one record per epoch (train loss, validation metrics, seconds, learning rate).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from ..errors import InputError
from ..io.atomic import write_atomic, write_text_atomic

log = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.pt"
BEST_WEIGHTS = "best_weights.pt"
HISTORY_FILE = "history.json"
#: run settings (dotted keys of the caller's ``run_settings``) a resumed run may change: more epochs or patience,
#: another device (bfloat16 autocast follows the device)
RESUMABLE_SETTINGS: tuple[str, ...] = ("loop.max_epochs", "loop.patience_epochs", "loop.bf16")


@dataclass
class TrainLoopConfig:
    """Optimisation settings.

    Attributes:
        max_epochs: upper bound of epochs (the cosine schedule spans it).
        patience_epochs: stop after this many epochs without a better validation score.
        learning_rate: Adam's initial learning rate.
        min_learning_rate_fraction: the cosine schedule ends at ``learning_rate * this``.
        weight_decay: AdamW weight decay.
        bf16: bfloat16 autocast on CPU (AMX/AVX-512-BF16 machines gain ~2x; weights stay float32).
        seed: seed of the weight initialisation.
    """

    max_epochs: int = 40
    patience_epochs: int = 10
    learning_rate: float = 2e-3
    min_learning_rate_fraction: float = 0.02
    weight_decay: float = 1e-4
    bf16: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_epochs < 1 or self.patience_epochs < 1:
            raise InputError(f"max_epochs and patience_epochs must be >= 1; got {self.max_epochs}, {self.patience_epochs}")
        if not self.learning_rate > 0:
            raise InputError(f"learning_rate must be > 0; got {self.learning_rate}")


def autocast(enabled: bool, device_type: str = "cpu") -> Any:
    """bfloat16 autocast context on ``device_type`` ("cpu" or "cuda"; a no-op when disabled)."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled)


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` (a tensor, or dicts / lists / tuples / named tuples of them and other values; a batch or a network
    output such as :class:`~breastlesionseg.nn.multitask_output.MultiTaskOutput`) with its tensors on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type != "cpu")  # copies to the CPU are complete on return
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a named tuple takes its fields positionally
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


class _CpuInterface(nn.Module):
    """``model`` on its device, called with CPU tensors and returning CPU tensors (for validation functions)."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.model = model
        self.device = device

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Inputs to the model's device, outputs back to the CPU."""
        output = self.model(*to_device(args, self.device), **to_device(kwargs, self.device))
        return to_device(output, torch.device("cpu"))


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with CPU tensors (same type and version metadata, so files match a CPU run's)."""
    state = model.state_dict()
    cpu = type(state)((k, v.detach().cpu()) for k, v in state.items())
    if hasattr(state, "_metadata"):
        cpu._metadata = state._metadata
    return cpu


def cosine_learning_rate(epoch: int, config: TrainLoopConfig) -> float:
    """Learning rate of 1-based ``epoch``: cosine from ``learning_rate`` (epoch 1) to the minimum (last epoch).

    Closed form of the epoch (no scheduler state), so a run resumed with another ``max_epochs`` anneals
    to the new end.
    """
    low = config.learning_rate * config.min_learning_rate_fraction
    progress = min(1.0, (epoch - 1) / max(1, config.max_epochs - 1))
    return low + (config.learning_rate - low) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _save(path: Path, payload: Any) -> None:
    write_atomic(path, lambda tmp: torch.save(payload, tmp), overwrite=True)


def _finished(state: dict[str, Any], config: TrainLoopConfig) -> bool:
    """Whether a run in ``state`` (its checkpoint's loop state) is done under ``config``: it stopped early, or it
    ran ``config.max_epochs``."""
    return state["stale_epochs"] >= config.patience_epochs or state["epoch"] >= config.max_epochs


def run_complete(checkpoint_dir: str | Path, config: TrainLoopConfig) -> bool:
    """Whether ``checkpoint_dir`` holds a run that resuming under ``config`` would not continue (so a caller can skip
    preparing its data); False without a checkpoint."""
    path = Path(checkpoint_dir) / LAST_CHECKPOINT
    if not path.is_file():
        return False
    return _finished(torch.load(path, map_location="cpu", weights_only=True), config)


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"loop": {"seed": 0}}`` -> ``{"loop.seed": 0}`` (nested dictionaries only; lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _check_same_settings(path: Path, recorded: dict[str, Any] | None, run_settings: dict[str, Any] | None) -> None:
    """InputError when the checkpoint ``path`` was written under other run settings than ``run_settings``
    (except :data:`RESUMABLE_SETTINGS`; ``run_settings`` JSON-normalised, as :func:`_as_stored` gives them); a
    checkpoint or a call without settings is not checked."""
    if recorded is None or run_settings is None:
        return
    old, now = _flat(recorded), _flat(run_settings)
    changed = sorted(k for k in old.keys() | now.keys() if k not in RESUMABLE_SETTINGS and old.get(k) != now.get(k))
    if changed:
        raise InputError(f"--resume: '{path}' was trained with other settings for {changed} (checkpoint "
                         f"{ {k: old.get(k) for k in changed} }, now { {k: now.get(k) for k in changed} }); resume "
                         "with the same settings, or train into another output folder")


def _as_stored(run_settings: dict[str, Any] | None) -> dict[str, Any] | None:
    """``run_settings`` as ``last.pt`` holds them (through JSON: tuples become lists)."""
    return None if run_settings is None else json.loads(json.dumps(run_settings))


def check_resume_settings(checkpoint_dir: str | Path, run_settings: dict[str, Any]) -> None:
    """Before a resumed run rewrites anything: InputError when ``checkpoint_dir/last.pt`` was trained under other
    ``run_settings`` (JSON-like, nested dictionaries allowed) than these; nothing to check without a checkpoint."""
    path = Path(checkpoint_dir) / LAST_CHECKPOINT
    if path.is_file():
        _check_same_settings(path, torch.load(path, map_location="cpu", weights_only=True).get("run_settings"),
                             _as_stored(run_settings))


def _restore(checkpoint_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, resume: bool,
             config: TrainLoopConfig, run_settings: dict[str, Any] | None) -> dict[str, Any]:
    """Load ``last.pt`` into model/optimizer when resuming; the loop state (epoch, best, history).

    A finished run is reopened when ``config`` allows more epochs than it ran and it did not stop early.
    """
    path = checkpoint_dir / LAST_CHECKPOINT
    state = {"epoch": 0, "best_score": -math.inf, "best_epoch": 0, "stale_epochs": 0, "history": [], "finished": False}
    if not path.exists():
        return state
    if not resume:
        raise InputError(f"'{path}' exists: pass --resume to continue that run, or choose another output folder")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    _check_same_settings(path, checkpoint.get("run_settings"), run_settings)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["torch_rng"])
    state.update({k: checkpoint[k] for k in state})
    state["finished"] = _finished(state, config)
    log.info("resumed %s at epoch %d (best score %.4f at epoch %d)", path, state["epoch"], state["best_score"], state["best_epoch"])
    return state


def _train_one_epoch(model: nn.Module, batches: Iterable[Any], batch_loss: Callable[[nn.Module, Any], torch.Tensor],
                     optimizer: torch.optim.Optimizer, bf16: bool, device: torch.device) -> float:
    """Mean training loss of one pass over ``batches`` (each moved to ``device``)."""
    model.train()
    total, count = 0.0, 0
    for batch in batches:
        with autocast(bf16, device.type):
            loss = batch_loss(model, to_device(batch, device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach())
        count += 1
    return total / max(count, 1)


def run_training(model: nn.Module, epoch_batches: Callable[[int], Iterable[Any]],
                 batch_loss: Callable[[nn.Module, Any], torch.Tensor],
                 validate: Callable[[nn.Module], dict[str, float]], checkpoint_dir: str | Path,
                 config: TrainLoopConfig, resume: bool = False,
                 device: str | torch.device = "cpu", run_settings: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Train until ``max_epochs`` or early stopping; resumable after an interruption at any point.

    Args:
        model: the network (on return: on the CPU, with the weights of the last epoch; the best ones are in
            best_weights.pt).
        epoch_batches: ``epoch -> iterable of batches`` (seed the epoch's augmentation from ``epoch``).
        batch_loss: ``(model, batch) -> scalar loss`` (called under autocast).
        validate: ``model -> metrics`` with a ``"score"`` key, higher is better (model in eval mode, no grad).
        checkpoint_dir: folder of last.pt / best_weights.pt / history.json (created).
        config: optimisation settings.
        resume: continue from ``last.pt``; without it an existing ``last.pt`` is an error.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (the model is moved there; a run may be
            resumed on another device).
        run_settings: the caller's whole training configuration (JSON-like), stored in ``last.pt``; a resumed
            run must have the same, except :data:`RESUMABLE_SETTINGS`. None: not recorded or checked.
    Returns:
        The per-epoch history.
    Raises:
        InputError: an unknown or unavailable device; ``last.pt`` exists without ``resume``; resuming with other
            ``run_settings``.
    """
    from ..inference.device import resolve_device

    device = resolve_device(device)
    run_settings = _as_stored(run_settings)
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    state = _restore(checkpoint_dir, model, optimizer, resume, config, run_settings)
    while not state["finished"]:
        epoch = state["epoch"] + 1
        started = time.perf_counter()
        learning_rate = cosine_learning_rate(epoch, config)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        train_loss = _train_one_epoch(model, epoch_batches(epoch), batch_loss, optimizer, config.bf16, device)
        model.eval()
        with torch.no_grad(), autocast(config.bf16, device.type):
            metrics = {k: float(v) for k, v in validate(model if device.type == "cpu"
                                                         else _CpuInterface(model, device)).items()}
        record = {"epoch": epoch, "train_loss": train_loss, "learning_rate": learning_rate,
                  "seconds": time.perf_counter() - started, **{f"val_{k}": v for k, v in metrics.items()}}
        state["history"].append(record)
        state["epoch"] = epoch
        if metrics["score"] > state["best_score"]:
            state.update(best_score=metrics["score"], best_epoch=epoch, stale_epochs=0)
            _save(checkpoint_dir / BEST_WEIGHTS, _cpu_state(model))
        else:
            state["stale_epochs"] += 1
        state["finished"] = epoch >= config.max_epochs or state["stale_epochs"] >= config.patience_epochs
        _save(checkpoint_dir / LAST_CHECKPOINT, {**state, "model": _cpu_state(model),
                                                  "optimizer": to_device(optimizer.state_dict(), torch.device("cpu")),
                                                  "torch_rng": torch.get_rng_state(),
                                                  "config": dataclasses.asdict(config),
                                                  "run_settings": run_settings})
        write_text_atomic(checkpoint_dir / HISTORY_FILE, json.dumps(state["history"], indent=1), overwrite=True)
        log.info("epoch %d: loss %.4f, %s, %.0f s%s", epoch, train_loss,
                 ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), record["seconds"],
                 " (best)" if state["best_epoch"] == epoch else "")
    model.to("cpu")
    return state["history"]
