"""Training progress for people (a bar on stderr) and for the Slicer module (JSON lines on stdout).

Uses the shared protocol helpers of :mod:`breastlesionseg.progress` (``ConsoleProgressBar``,
``JsonLinesProgress``); this module adds what is specific to training: per-batch bar updates with
epoch, running loss, last validation Dice and ETA, and one ``epoch`` event per epoch.
"""
from __future__ import annotations

import logging
import math
import time
from typing import IO

from ..progress import ConsoleProgressBar, JsonLinesProgress

log = logging.getLogger(__name__)


def format_duration(seconds: float | None) -> str:
    """``3725`` -> ``"1h02m"``, ``95`` -> ``"1m35s"``, None -> ``"?"``."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(max(0.0, seconds)))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class TrainingProgress:
    """Report a training run.

    Args:
        mode: ``"bar"`` (console bar on stderr), ``"json"`` (JSON lines on ``stream``, default stdout)
            or ``"none"`` (log lines only).
        epochs: total epochs.
        start_epoch: first epoch of this run (resume), 1-based epochs are reported.
        stream: JSON stream (tests pass a StringIO); the bar always goes to stderr.
    """

    def __init__(self, mode: str, epochs: int, start_epoch: int = 0, stream: IO[str] | None = None) -> None:
        self.mode = mode
        self.epochs = int(epochs)
        self.start_epoch = int(start_epoch)
        self.json = JsonLinesProgress(stream) if mode == "json" else None
        self.bar = ConsoleProgressBar() if mode == "bar" else None
        self._t0 = time.monotonic()
        self.last_val_dice: float | None = None

    def eta_s(self, epoch_fraction_done: float) -> float | None:
        """Seconds left, from the mean pace of this run; ``epoch_fraction_done`` counts epochs (fractional)."""
        done = epoch_fraction_done - self.start_epoch
        if done <= 0:
            return None
        elapsed = time.monotonic() - self._t0
        return elapsed / done * (self.epochs - epoch_fraction_done)

    def stage(self, stage: str, fraction: float, message: str = "") -> None:
        """A preparation step (``preprocess``, ``save``): progress event / bar line."""
        if self.json is not None:
            self.json(stage, fraction, message)
        if self.bar is not None:
            self.bar(stage, fraction, message)

    def batch(self, epoch: int, step: int, steps: int, running_loss: float) -> None:
        """After each optimizer step of ``epoch`` (0-based)."""
        if self.bar is None:
            return
        frac = (epoch + (step + 1) / max(steps, 1)) / self.epochs
        val = "-" if self.last_val_dice is None else f"{self.last_val_dice:.3f}"
        eta = format_duration(self.eta_s(epoch + (step + 1) / max(steps, 1)))
        self.bar(f"epoch {epoch + 1}/{self.epochs}", frac,
                 f"batch {step + 1}/{steps} loss {running_loss:.4f} val Dice {val} ETA {eta}")

    def epoch(self, epoch: int, train_loss: float, val_dice: float | None, val_iou: float | None,
              val_loss: float | None = None, lr: float | None = None, epoch_time_s: float | None = None) -> None:
        """After each epoch (0-based ``epoch``): JSON ``epoch`` event / final bar state / log line."""
        if val_dice is not None:
            self.last_val_dice = val_dice
        eta = self.eta_s(epoch + 1)
        if self.json is not None:
            self.json.epoch(epoch + 1, self.epochs, train_loss=train_loss, val_dice=val_dice, val_iou=val_iou,
                            val_loss=val_loss, lr=lr, eta_s=eta if eta is not None else 0.0,
                            epoch_time_s=epoch_time_s)
        if self.bar is not None:
            self.bar(f"epoch {epoch + 1}/{self.epochs}", (epoch + 1) / self.epochs,
                     f"loss {train_loss:.4f} val Dice {'-' if val_dice is None else f'{val_dice:.3f}'} "
                     f"ETA {format_duration(eta)}")
        log.info("epoch %d/%d: train loss %.4f, val Dice %s, val IoU %s, %.1f s, ETA %s", epoch + 1, self.epochs,
                 train_loss, "-" if val_dice is None else f"{val_dice:.4f}",
                 "-" if val_iou is None else f"{val_iou:.4f}", epoch_time_s or 0.0, format_duration(eta))

    def done(self, output: str) -> None:
        """Training finished: ``done`` event."""
        if self.bar is not None:
            self.bar.close()
        if self.json is not None:
            self.json.done(output)

    def error(self, message: str) -> None:
        """Training failed: ``error`` event."""
        if self.bar is not None:
            self.bar.close()
        if self.json is not None:
            self.json.error(message)
