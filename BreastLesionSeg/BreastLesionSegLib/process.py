"""Out-of-process runs of the ``breastlesionseg`` CLI (segment, train) with JSON progress and cancel.

Pure Python (``subprocess`` + reader threads), no Qt: the Slicer widget polls :meth:`OutOfProcessRun.poll`
from a ``qt.QTimer`` so the UI never freezes, and tests drive the same class directly.

Protocol (docs/DESIGN.md, "Progress protocol"): with ``--progress json`` the CLI prints one JSON object
per line on stdout (``progress`` / ``epoch`` / ``done`` / ``error`` events); human logs go to stderr.
Cancel = terminate the process group (then kill after a grace period). Every run writes into its own
fresh folder, which a cancelled or failed run removes, so nothing partial is left behind and the
MRML scene is only touched after a successful run.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)

#: States of a run.
PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = "pending", "running", "succeeded", "failed", "cancelled"


@dataclass(frozen=True)
class ProgressEvent:
    """One machine-readable line of the CLI.

    Attributes:
        event: "progress", "epoch", "done", "error" (or another event name the CLI adds).
        data: the whole JSON object.
    """

    event: str
    data: dict

    @property
    def fraction(self) -> float | None:
        """Overall fraction done (0..1) for progress events; epoch/epochs for epoch events."""
        if self.event == "progress" and isinstance(self.data.get("fraction"), (int, float)):
            return min(1.0, max(0.0, float(self.data["fraction"])))
        if self.event == "epoch" and self.data.get("epochs"):
            return min(1.0, max(0.0, float(self.data.get("epoch", 0)) / float(self.data["epochs"])))
        return None

    @property
    def message(self) -> str:
        """A one-line human description."""
        d = self.data
        if self.event == "progress":
            return f"{d.get('stage', '')}: {d.get('message', '')}".strip(": ")
        if self.event == "epoch":
            parts = [f"epoch {d.get('epoch')}/{d.get('epochs')}"]
            for key, fmt in (("train_loss", "loss {:.4f}"), ("val_dice", "val Dice {:.3f}"), ("eta_s", "ETA {:.0f} s")):
                if isinstance(d.get(key), (int, float)):
                    parts.append(fmt.format(d[key]))
            return ", ".join(parts)
        if self.event == "done":
            return f"done: {d.get('output', '')}"
        if self.event == "error":
            return f"error: {d.get('message', '')}"
        return json.dumps(d)


def parse_progress_line(line: str) -> ProgressEvent | None:
    """The event of one stdout line, or None when the line is not a protocol JSON object."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        return None
    return ProgressEvent(data["event"], data)


def core_pythonpath() -> str:
    """The folder that contains the ``breastlesionseg`` package (put on PYTHONPATH of the child)."""
    import breastlesionseg

    return str(Path(breastlesionseg.__file__).resolve().parent.parent)


def python_executable() -> str:
    """The Python to run the CLI with: Slicer's ``PythonSlicer`` inside Slicer, else this interpreter."""
    if "slicer" in sys.modules and hasattr(sys.modules["slicer"], "app"):
        found = shutil.which("PythonSlicer")
        if found:
            return found
    return sys.executable


def cli_command(args: Sequence[str], python: str | None = None) -> list[str]:
    """``[python, -m, breastlesionseg.cli.main, *args]``."""
    return [python or python_executable(), "-m", "breastlesionseg.cli.main", *[str(a) for a in args]]


def child_environment(extra: dict[str, str] | None = None, threads: int | None = None) -> dict[str, str]:
    """Environment of the child: this one plus the core package on PYTHONPATH and a thread cap."""
    env = dict(os.environ)
    paths = [core_pythonpath()] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    if threads:
        env["OMP_NUM_THREADS"] = str(int(threads))
    env.update(extra or {})
    return env


@dataclass
class RunUpdate:
    """What :meth:`OutOfProcessRun.poll` collected since the previous call."""

    events: list[ProgressEvent] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    state: str = PENDING
    fraction: float | None = None


class OutOfProcessRun:
    """A child process whose stdout carries progress JSON lines and stderr human logs.

    Args:
        command: full argv.
        run_dir: a folder owned by this run (created; removed on cancel/failure when ``cleanup``).
        env: child environment (default: :func:`child_environment`).
        cleanup: remove ``run_dir`` when the run is cancelled or fails.
        name: label used in logs ("segmentation", "training").
    """

    def __init__(self, command: Sequence[str], run_dir: str | os.PathLike | None = None,
                 env: dict[str, str] | None = None, cleanup: bool = True, name: str = "run") -> None:
        if not command:
            raise ValueError("command must not be empty")
        self.command = [str(c) for c in command]
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.env = env if env is not None else child_environment()
        self.cleanup = cleanup
        self.name = name
        self.state = PENDING
        self.returncode: int | None = None
        self.fraction: float | None = None
        self.events: list[ProgressEvent] = []
        self.log_lines: list[str] = []
        self.error_message: str = ""
        self.done_output: str | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._proc: subprocess.Popen | None = None
        self._queue: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._cancel_requested = False

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "OutOfProcessRun":
        """Start the child process (non-blocking)."""
        if self.state != PENDING:
            raise RuntimeError(f"{self.name} was already started (state {self.state})")
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # own process group: cancel reaches worker children too
        else:  # pragma: no cover - Windows
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        log.info("starting %s: %s", self.name, " ".join(self.command))
        self._proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL, env=self.env, text=True, encoding="utf-8",
                                      errors="replace", bufsize=1, **kwargs)
        self.started_at = time.monotonic()
        self.state = RUNNING
        for stream, tag in ((self._proc.stdout, "out"), (self._proc.stderr, "err")):
            t = threading.Thread(target=self._reader, args=(stream, tag), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _reader(self, stream: Any, tag: str) -> None:
        for line in iter(stream.readline, ""):
            self._queue.put((tag, line.rstrip("\n")))
        stream.close()

    @property
    def pid(self) -> int | None:
        """Process id of the child."""
        return self._proc.pid if self._proc is not None else None

    def poll(self) -> RunUpdate:
        """Collect output since the last call and update the state (never blocks)."""
        update = RunUpdate()
        self._drain(update)
        if self.state == RUNNING and self._proc is not None and self._proc.poll() is not None:
            for t in self._threads:  # the pipes close right after exit: read the rest
                t.join(timeout=5)
            self._drain(update)
            self._finish(self._proc.returncode)
        update.state = self.state
        update.fraction = self.fraction
        return update

    def _drain(self, update: RunUpdate) -> None:
        while True:
            try:
                tag, line = self._queue.get_nowait()
            except queue.Empty:
                return
            event = parse_progress_line(line) if tag == "out" else None
            if event is None:
                if line.strip():
                    self.log_lines.append(line)
                    update.log_lines.append(line)
                continue
            self.events.append(event)
            update.events.append(event)
            if event.fraction is not None:
                self.fraction = event.fraction
            if event.event == "done":
                self.done_output = str(event.data.get("output", "")) or None
                self.fraction = 1.0
            elif event.event == "error":
                self.error_message = str(event.data.get("message", ""))

    def _finish(self, returncode: int) -> None:
        self.returncode = returncode
        self.finished_at = time.monotonic()
        if self._cancel_requested:
            self.state = CANCELLED
        elif returncode == 0:
            self.state = SUCCEEDED
        else:
            self.state = FAILED
            if not self.error_message:
                tail = [line for line in self.log_lines[-5:] if line.strip()]
                self.error_message = tail[-1] if tail else f"{self.name} exited with code {returncode}"
        if self.state != SUCCEEDED and self.cleanup and self.run_dir is not None and self.run_dir.exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)
        log.info("%s %s (exit code %s)", self.name, self.state, returncode)

    def wait(self, timeout_s: float | None = None, poll_interval_s: float = 0.05) -> str:
        """Block until the run ends (for tests and the Slicer self-test); returns the final state.

        Raises:
            TimeoutError: still running after ``timeout_s``.
        """
        t0 = time.monotonic()
        while True:
            self.poll()
            if self.state not in (PENDING, RUNNING):
                return self.state
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"{self.name} still running after {timeout_s:.0f} s")
            time.sleep(poll_interval_s)

    def cancel(self, grace_s: float = 5.0) -> str:
        """Terminate the child (its whole process group), kill it after ``grace_s``; returns the state."""
        if self.state != RUNNING or self._proc is None:
            return self.state
        self._cancel_requested = True
        self._signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
            self._proc.wait(timeout=grace_s)
        return self.wait(timeout_s=grace_s)

    def _signal(self, sig: int) -> None:
        if self._proc is None:
            return
        try:
            if os.name == "posix":
                os.killpg(os.getpgid(self._proc.pid), sig)
            else:  # pragma: no cover - Windows
                self._proc.send_signal(signal.CTRL_BREAK_EVENT if sig == signal.SIGTERM else sig)
        except ProcessLookupError:
            pass

    @property
    def elapsed_s(self) -> float:
        """Seconds since start (until the end when finished)."""
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.monotonic()) - self.started_at
