"""Progress reporting shared by the CLI, the Slicer module and the inference engine.

A long-running function takes an optional ``progress`` callback with the signature
``progress(stage: str, fraction: float, message: str = "") -> None`` where ``fraction`` is the
overall fraction of the whole job done (0.0 .. 1.0, non-decreasing) and ``stage`` names the step
that is running. This module holds:

* :class:`StageProgress` — turns per-stage fractions into one monotone overall fraction from
  stage weights (what the engine uses internally);
* :class:`JsonLinesProgress` — the out-of-process protocol of ``docs/DESIGN.md``
  ("Progress protocol"): one JSON object per line on stdout (``progress``, ``epoch``, ``done``,
  ``error`` events);
* :class:`ConsoleProgressBar` — a one-line text bar for humans (stderr).
"""
from __future__ import annotations

import json
import math
import sys
import threading
import time
from typing import IO, Callable, Protocol, Sequence


class ProgressCallback(Protocol):
    """Callable receiving ``(stage, fraction, message)``; ``fraction`` is overall, in [0, 1]."""

    def __call__(self, stage: str, fraction: float, message: str = "") -> None: ...  # pragma: no cover


class CancelToken(Protocol):
    """Anything with ``is_set() -> bool``, e.g. :class:`threading.Event`."""

    def is_set(self) -> bool: ...  # pragma: no cover


def _clip_fraction(fraction: float) -> float:
    if not math.isfinite(float(fraction)):
        raise ValueError(f"progress fraction must be finite, got {fraction}")
    return min(1.0, max(0.0, float(fraction)))


class StageProgress:
    """Map per-stage progress onto one overall, never-decreasing fraction.

    Args:
        stages: ``[(stage_name, weight), ...]`` in execution order; weights are relative
            (e.g. expected seconds) and must be positive.
        callback: the downstream callback, or ``None`` to only track.

    Example:
        >>> sp = StageProgress([("load", 1.0), ("infer", 3.0)], None)
        >>> sp.update("infer", 0.5); round(sp.fraction, 3)
        0.625
    """

    def __init__(self, stages: Sequence[tuple[str, float]], callback: Callable[..., None] | None) -> None:
        if not stages:
            raise ValueError("StageProgress needs at least one stage")
        names = [name for name, _ in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"StageProgress stage names must be unique, got {names}")
        weights = [float(w) for _, w in stages]
        if any(not math.isfinite(w) or w <= 0 for w in weights):
            raise ValueError(f"StageProgress weights must be positive, got {weights}")
        total = sum(weights)
        self._start: dict[str, float] = {}
        self._width: dict[str, float] = {}
        acc = 0.0
        for name, w in zip(names, weights):
            self._start[name] = acc / total
            self._width[name] = w / total
            acc += w
        self._callback = callback
        self._lock = threading.Lock()
        self.fraction = 0.0

    @property
    def stages(self) -> list[str]:
        """Stage names in order."""
        return list(self._start)

    def update(self, stage: str, stage_fraction: float, message: str = "") -> None:
        """Report that ``stage`` is ``stage_fraction`` done (0..1); forwards the overall fraction.

        Raises:
            ValueError: unknown ``stage``.
        """
        if stage not in self._start:
            raise ValueError(f"unknown progress stage '{stage}'; known: {self.stages}")
        overall = self._start[stage] + self._width[stage] * _clip_fraction(stage_fraction)
        with self._lock:
            overall = max(self.fraction, min(1.0, overall))  # never go backwards
            self.fraction = overall
        if self._callback is not None:
            self._callback(stage, overall, message)

    def sub(self, stage: str) -> Callable[[float, str], None]:
        """A ``f(stage_fraction, message="")`` bound to ``stage`` (for inner loops)."""
        if stage not in self._start:
            raise ValueError(f"unknown progress stage '{stage}'; known: {self.stages}")

        def _report(stage_fraction: float, message: str = "") -> None:
            self.update(stage, stage_fraction, message)

        return _report


class JsonLinesProgress:
    """Emit the JSON-lines progress protocol (one object per line, flushed) on a stream.

    Args:
        stream: where to write, default ``sys.stdout`` (human logs belong on stderr).
        min_interval_s: drop ``progress`` events closer than this to the previous one unless the
            stage changed or the fraction reached 1 (keeps the pipe quiet in tight loops).
    """

    def __init__(self, stream: IO[str] | None = None, min_interval_s: float = 0.0) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._min_interval_s = float(min_interval_s)
        self._last_time = -math.inf
        self._last_stage: str | None = None
        self._lock = threading.Lock()

    def _emit(self, obj: dict) -> None:
        line = json.dumps(obj, allow_nan=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        """Emit ``{"event": "progress", "stage", "fraction", "message"}``."""
        now = time.monotonic()
        fraction = _clip_fraction(fraction)
        if (
            stage == self._last_stage
            and fraction < 1.0
            and now - self._last_time < self._min_interval_s
        ):
            return
        self._last_time, self._last_stage = now, stage
        self._emit({"event": "progress", "stage": str(stage), "fraction": round(fraction, 6), "message": str(message)})

    def epoch(self, epoch: int, epochs: int, **values: float) -> None:
        """Emit ``{"event": "epoch", "epoch", "epochs", ...}`` (training; extra values e.g. train_loss, eta_s)."""
        obj: dict = {"event": "epoch", "epoch": int(epoch), "epochs": int(epochs)}
        for key, value in values.items():
            obj[key] = None if value is None or not math.isfinite(float(value)) else float(value)
        self._emit(obj)

    def done(self, output: str) -> None:
        """Emit ``{"event": "done", "output": "<folder>"}``."""
        self._emit({"event": "done", "output": str(output)})

    def error(self, message: str) -> None:
        """Emit ``{"event": "error", "message": "..."}`` (before a non-zero exit)."""
        self._emit({"event": "error", "message": str(message)})


class ConsoleProgressBar:
    """A single-line text progress bar, e.g. ``[#######.............]  35% inference: window 12/40``.

    Args:
        stream: where to draw, default ``sys.stderr``.
        width: bar width in characters.
        min_interval_s: redraw at most this often (except at stage changes and the end).
    """

    def __init__(self, stream: IO[str] | None = None, width: int = 30, min_interval_s: float = 0.1) -> None:
        if width < 5:
            raise ValueError(f"ConsoleProgressBar width must be >= 5, got {width}")
        self._stream = stream if stream is not None else sys.stderr
        self._width = int(width)
        self._min_interval_s = float(min_interval_s)
        self._last_time = -math.inf
        self._last_stage: str | None = None
        self._is_tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._open_line = False

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        """Redraw the bar."""
        now = time.monotonic()
        fraction = _clip_fraction(fraction)
        if stage == self._last_stage and fraction < 1.0 and now - self._last_time < self._min_interval_s:
            return
        if not self._is_tty and stage == self._last_stage and fraction < 1.0:
            return  # in logs / pipes print one line per stage only
        self._last_time, self._last_stage = now, stage
        filled = int(round(fraction * self._width))
        bar = "#" * filled + "." * (self._width - filled)
        text = f"[{bar}] {fraction * 100:3.0f}% {stage}" + (f": {message}" if message else "")
        if self._is_tty:
            self._stream.write("\r\x1b[2K" + text)
            self._open_line = True
            if fraction >= 1.0:
                self._stream.write("\n")
                self._open_line = False
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def close(self) -> None:
        """End the line if a bar is still open."""
        if self._open_line:
            self._stream.write("\n")
            self._stream.flush()
            self._open_line = False


def scaled(callback: Callable[..., None] | None, start: float, end: float) -> Callable[..., None] | None:
    """A callback that maps a sub-job's overall fraction 0..1 onto ``[start, end]`` of ``callback``.

    Stage names and messages pass through unchanged; the mapped fraction never decreases.
    Returns ``None`` when ``callback`` is ``None``.
    """
    if callback is None:
        return None
    if not (0.0 <= start <= end <= 1.0):
        raise ValueError(f"scaled progress needs 0 <= start <= end <= 1, got {start}, {end}")
    last = [start]

    def _report(stage: str, fraction: float, message: str = "") -> None:
        value = max(last[0], start + (end - start) * _clip_fraction(fraction))
        last[0] = value
        callback(stage, value, message)

    return _report
