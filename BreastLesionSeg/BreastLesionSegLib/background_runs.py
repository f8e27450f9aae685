"""The panel's background runs (one segmentation, one training at a time) and what each poll reports.

The widget's timer calls :meth:`BackgroundRuns.poll`; everything about the runs' state (which run is
going, what to log, when one finished and how) is decided here and tested with real child processes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breastlesionseg.errors import InputError

from .process import CANCELLED, FAILED, PENDING, RUNNING, SUCCEEDED, OutOfProcessRun

#: status text of a finished run by state
_OUTCOME = {SUCCEEDED: "{name} finished in {elapsed:.0f} s.", CANCELLED: "{name} cancelled: the scene was not changed.",
            FAILED: "{name} failed: {error}"}


def run_outcome(run: OutOfProcessRun) -> str:
    """One line for the status label about a finished run."""
    text = _OUTCOME.get(run.state, "{name} is {state}.")
    return text.format(name=run.name.capitalize(), elapsed=run.elapsed_s, error=run.error_message, state=run.state)


@dataclass
class PollReport:
    """What happened since the previous poll.

    Attributes:
        log_lines: child log lines and progress messages, in order.
        segmentation_fraction: progress of the segmentation (0..1) or None when none is running.
        training_fraction: progress of the training (0..1) or None.
        new_epoch: an epoch ended (redraw the training curves).
        segmentation_done: the finished segmentation job (to import or report), else None.
        training_done: (run, model folder) of a finished training, else None.
    """

    log_lines: list[str] = field(default_factory=list)
    segmentation_fraction: float | None = None
    training_fraction: float | None = None
    new_epoch: bool = False
    segmentation_done: Any = None
    training_done: tuple[OutOfProcessRun, Path] | None = None


class BackgroundRuns:
    """At most one segmentation job and one training run, polled together."""

    def __init__(self) -> None:
        self.segmentation: Any = None  # logic.SegmentationJob
        self.training: tuple[OutOfProcessRun, Path] | None = None

    @property
    def busy(self) -> bool:
        """True while a run is going (the timer must keep polling)."""
        return self.segmentation is not None or self.training is not None

    def start_segmentation(self, job: Any) -> None:
        """Track a started segmentation job (refused while another one runs)."""
        if self.segmentation is not None:
            raise InputError("a segmentation is already running: wait for it or cancel it")
        self.segmentation = job

    def start_training(self, run_and_output: tuple[OutOfProcessRun, Path]) -> None:
        """Track a started training run (refused while another one runs)."""
        if self.training is not None:
            raise InputError("a training is already running: wait for it or stop it")
        self.training = run_and_output

    def cancel(self, which: str = "all") -> None:
        """Cancel "segmentation", "training" or "all" running children."""
        if which in ("segmentation", "all") and self.segmentation is not None:
            self.segmentation.run.cancel()
        if which in ("training", "all") and self.training is not None:
            self.training[0].cancel()

    def poll(self) -> PollReport:
        """Collect output and finished runs (never blocks)."""
        report = PollReport()
        if self.segmentation is not None:
            report.segmentation_fraction = self._collect(self.segmentation.run, report)
            if self.segmentation.run.state not in (PENDING, RUNNING):
                report.segmentation_done, self.segmentation = self.segmentation, None
        if self.training is not None:
            run = self.training[0]
            before = sum(e.event == "epoch" for e in run.events)
            report.training_fraction = self._collect(run, report)
            report.new_epoch = sum(e.event == "epoch" for e in run.events) > before
            if run.state not in (PENDING, RUNNING):
                report.training_done, self.training = self.training, None
        return report

    @staticmethod
    def _collect(run: OutOfProcessRun, report: PollReport) -> float:
        update = run.poll()
        report.log_lines += update.log_lines + [e.message for e in update.events]
        return float(update.fraction or 0.0)
