"""``breastlesionseg segment``: segment one DCE exam and write the result folder.

    breastlesionseg segment PHASE [PHASE ...] --output DIR [--model NAME|PATH] [--device D]
        [--save-probability] [--heatmap] [--overlap O] [--threshold T] [--min-lesion-mm3 V]
        [--no-breast-mask] [--tta] [--progress json|bar|none] [--force]

PHASE: the phase files in time order (pre-contrast first), or one DICOM study folder. The output
folder gets ``segmentation.seg.nrrd``, ``lesions.nii.gz``, ``breast_mask.nii.gz``, ``metrics.json``,
``overview.png`` (and ``probability.nii.gz`` / ``heatmap.nii.gz`` when asked). Nothing is written
unless everything succeeds; a non-empty folder is only written into with ``--force``.
With ``--progress json`` stdout carries only the JSON-lines progress protocol (docs/DESIGN.md).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import BreastLesionSegError

log = logging.getLogger(__name__)


def _fraction_arg(name: str, low: float, high: float, high_inclusive: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        ok = low <= value <= high if high_inclusive else low <= value < high
        if not ok:
            bracket = "]" if high_inclusive else ")"
            raise argparse.ArgumentTypeError(f"{name} must be in [{low}, {high}{bracket}, got {text}")
        return value

    return parse


def _threshold_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threshold must be a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"--threshold must be in (0, 1), got {text}")
    return value


def _nonneg_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--min-lesion-mm3 must be a number, got {text!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"--min-lesion-mm3 must be a finite value >= 0 mm3, got {text}")
    return value


def _window_arg(text: str) -> tuple[int, int, int]:
    """Parse ``--window D,H,W`` (three positive voxel counts)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--window must be three positive integers D,H,W; got {text!r}")
    return values  # type: ignore[return-value]


def _positive_int_arg(option: str):
    """argparse type: an integer >= 1 (the error names ``option``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be an integer >= 1; got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{option} must be an integer >= 1; got {value}")
        return value

    return parse


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``segment`` and ``demo`` (model, device, inference settings, progress)."""
    from ..inference.config import DEFAULT_MODEL

    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|PATH",
                        help=f"model id in the model search path or a model folder (default: {DEFAULT_MODEL})")
    parser.add_argument("--device", default="auto", metavar="D", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--overlap", type=_fraction_arg("--overlap", 0.0, 1.0), default=None, metavar="O",
                        help="sliding-window overlap in [0, 1) (default: the model card's)")
    parser.add_argument("--window", type=_window_arg, default=None, metavar="D,H,W",
                        help="sliding-window size in voxels at the model's spacing "
                             "(default: the model card's inference window)")
    parser.add_argument("--threshold", type=_threshold_arg, default=None, metavar="T",
                        help="lesion probability threshold in (0, 1) (default: the model card's)")
    parser.add_argument("--min-lesion-mm3", type=_nonneg_arg, default=None, metavar="V",
                        help="remove lesion components smaller than V mm3 (default: the model card's)")
    parser.add_argument("--no-breast-mask", action="store_true",
                        help="do not crop to / restrict lesions to the breast region (slower, more false positives)")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation with flips (slower)")
    parser.add_argument("--save-probability", action="store_true", help="also write probability.nii.gz")
    parser.add_argument("--heatmap", action="store_true",
                        help="also write heatmap.nii.gz: Grad-CAM of the lesion-presence (ACT) head")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for torch")
    from ..runtime.names import BACKEND_CHOICES, backend_help

    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, metavar="NAME", help=backend_help())
    parser.add_argument("--sw-batch-size", type=_positive_int_arg("--sw-batch-size"), default=None, metavar="B",
                        help="sliding windows per forward pass (default: the inference config's; halved "
                             "automatically on out-of-memory)")
    parser.add_argument("--progress", choices=("bar", "json", "none"), default="bar",
                        help="progress display: text bar on stderr (default), JSON lines on stdout, or none")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty output folder, replacing earlier output files")


def register(subparsers: Any) -> None:
    """Add the ``segment`` sub-command."""
    parser = subparsers.add_parser(
        "segment",
        help="segment the breast and the lesions of one DCE-MRI exam",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("phases", nargs="+", metavar="PHASE",
                        help="phase files in time order (pre-contrast first), or one DICOM study folder")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--register", action="store_true",
                        help="rigidly register each post-contrast phase to the pre-contrast phase first")
    parser.add_argument("--accept-phase-order", action="store_true",
                        help="proceed when the first phase is not the least enhanced (default: refuse); the "
                             "WARNING is recorded in metrics.json")
    add_engine_arguments(parser)
    parser.set_defaults(func=run)


def make_config(args: argparse.Namespace):
    """InferenceConfig from the parsed arguments."""
    from ..inference.config import InferenceConfig

    return InferenceConfig(
        model=args.model,
        device=args.device,
        overlap=args.overlap,
        threshold=args.threshold,
        window_zyx=args.window,
        min_lesion_volume_mm3=args.min_lesion_mm3,
        breast_masking=not args.no_breast_mask,
        tta=args.tta,
        save_probability=args.save_probability,
        heatmap=args.heatmap,
        num_threads=args.threads,
        backend=args.backend,
        **({} if args.sw_batch_size is None else {"sw_batch_size": args.sw_batch_size}),
    )


def make_reporter(mode: str):
    """``(progress callback or None, json emitter or None, close())`` for ``--progress``."""
    from ..progress import ConsoleProgressBar, JsonLinesProgress

    if mode == "json":
        emitter = JsonLinesProgress(sys.stdout, min_interval_s=0.2)
        return emitter, emitter, lambda: None
    if mode == "bar":
        bar = ConsoleProgressBar(sys.stderr)
        return bar, None, bar.close
    return None, None, lambda: None


class _Terminated(KeyboardInterrupt):
    """SIGTERM turned into an exception so temporary output is cleaned up."""


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise _Terminated()


def run(args: argparse.Namespace) -> int:
    """Run ``segment``; returns the exit code (errors propagate to the CLI main: exit 2)."""
    return run_reported(args, segment_command)


def run_reported(args: argparse.Namespace, command) -> int:
    """Run ``command(args, progress) -> output folder`` with the progress reporter of ``args.progress``.

    SIGTERM (the Slicer module's Cancel) becomes a clean cancellation; errors and cancellation are
    reported as JSON ``error`` events in ``--progress json`` mode and propagate; success ends with a
    ``done`` event naming the output folder.
    """
    progress, emitter, close = make_reporter(args.progress)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        out = command(args, progress)
    except BreastLesionSegError as exc:
        close()
        if emitter is not None:
            emitter.error(str(exc))
        raise
    except KeyboardInterrupt:
        close()
        if emitter is not None:
            emitter.error("cancelled; no output was written")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    close()
    if emitter is not None:
        emitter.done(str(out))
    return 0


def segment_command(args: argparse.Namespace, progress) -> Path:
    """Claim the output folder, then load, segment, write; print the lesion table. Returns the output folder."""
    from ..io.output_claim import claim_output

    with claim_output(args.output):  # one run per output folder; checked before any work
        return _segment_claimed(args, progress)


def _segment_claimed(args: argparse.Namespace, progress) -> Path:
    from ..exam import ExamChecks, load_exam
    from ..exam.validation import preflight_phase_files
    from ..inference import SegmentationEngine, check_output_dir, write_outputs
    from ..metrics import format_lesion_table
    from ..progress import scaled

    out = check_output_dir(args.output, overwrite=args.force)
    config = make_config(args)
    engine = SegmentationEngine(config)  # fails early on a bad model or device
    phase_paths = [Path(p) for p in args.phases]
    if len(phase_paths) > 1:
        preflight_phase_files(phase_paths)  # header-only memory estimate, before any thread or voxel
    engine.prepare_backend_in_background()  # overlaps with loading the exam and the breast region
    t0 = time.perf_counter()
    exam = load_exam([Path(p) for p in args.phases], register=args.register, progress=scaled(progress, 0.0, 0.1),
                     checks=ExamChecks(accept_phase_order=getattr(args, "accept_phase_order", False)))
    load_s = time.perf_counter() - t0
    result = engine.run(exam, progress=scaled(progress, 0.1, 0.93))
    if progress is not None:
        progress("write_outputs", 0.94, str(out))
    timings = {"load_exam": round(load_s, 4), **{k: round(v, 4) for k, v in result.timings_s.items()}}
    write_outputs(result, exam, out, overwrite=args.force, extra_metrics={"timings_s": timings},
                  title=f"{Path(args.phases[0]).name}: {result.n_lesions} lesion(s) - {result.model.model_id}")
    if progress is not None:
        progress("write_outputs", 1.0, str(out))
    report = sys.stderr if args.progress == "json" else sys.stdout
    print(format_lesion_table(result.metrics), file=report)
    if result.act_score is not None:
        print(f"lesion-presence score (ACT head): {result.act_score:.2f}", file=report)
    for note in result.notes:
        print(f"note: {note}", file=report)
    for warning in exam.warnings:
        print(warning, file=report)
    print(f"device: {result.device}; backend: {result.backend.split(' (')[0]}; time {result.timings_s['total']:.1f} s; "
          f"peak memory {result.peak_memory_mb:.0f} MiB", file=report)
    print(f"outputs written to {out}", file=report)
    return out
