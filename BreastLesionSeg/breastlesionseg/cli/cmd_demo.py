"""``breastlesionseg demo``: segment a synthetic phantom exam with the shipped demo model.

    breastlesionseg demo [--output DIR] [--seed N] [--model NAME|PATH] [--device D] [--progress ...]

Generates a phantom DCE exam (seed N, default 0 — a seed held out from the demo model's
training), runs the full pipeline on it (breast region, crop, sliding-window inference, lesion
instances, metrics), prints the lesion table and the Dice against the phantom's known truth, and
writes the usual output folder plus the phantom inputs (``phantom_inputs/``) so they can be opened
in 3D Slicer. Without ``--output`` the folder is ``./breastlesionseg-demo`` or, when that exists,
``./breastlesionseg-demo-2``, ``-3``, ... (never overwritten).

The shipped model is a DEMONSTRATION model trained on synthetic phantoms only.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ..errors import BreastLesionSegError, InputError
from .cmd_segment import add_engine_arguments, make_config, run_reported

log = logging.getLogger(__name__)

DEFAULT_DEMO_DIR = "breastlesionseg-demo"
DEMO_BANNER = (
    "NOTE: the shipped model is a DEMO model trained only on synthetic phantoms. It shows how the tool works; "
    "it is not validated on patient images and is not a medical device."
)


def register(subparsers: Any) -> None:
    """Add the ``demo`` sub-command."""
    parser = subparsers.add_parser(
        "demo",
        help="segment a synthetic phantom exam with the shipped demo model and compare with its truth",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", "-o", default=None, metavar="DIR",
                        help=f"output folder (default: ./{DEFAULT_DEMO_DIR}, numbered when it exists)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="phantom seed (default 0; seeds 0-19 are held out from the demo model's training)")
    add_engine_arguments(parser)
    parser.set_defaults(func=run)


def fresh_output_dir(base: str | Path = DEFAULT_DEMO_DIR) -> Path:
    """``base`` when it does not exist (or is an empty folder), else ``base-2``, ``base-3``, ..."""
    base = Path(base)
    candidates = [base] + [base.with_name(f"{base.name}-{i}") for i in range(2, 10000)]
    for candidate in candidates:
        if not candidate.exists() or (candidate.is_dir() and not any(candidate.iterdir())):
            return candidate
    raise InputError(f"no free demo output folder next to '{base}' (tried up to {candidates[-1].name})")


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}")
    return run_reported(args, demo_command)


def demo_command(args: argparse.Namespace, progress) -> Path:
    """Generate, segment, evaluate, write, report. Returns the output folder."""
    from ..inference import SegmentationEngine, check_output_dir, write_outputs
    from ..metrics import evaluate_segmentation, format_lesion_table
    from ..phantom import PhantomConfig, generate_phantom, write_phantom
    from ..progress import scaled

    report = sys.stderr if args.progress == "json" else sys.stdout
    out = fresh_output_dir() if args.output is None else check_output_dir(args.output, overwrite=args.force)
    engine = SegmentationEngine(make_config(args))
    engine.prepare_backend_in_background()  # overlaps with generating the phantom
    print(DEMO_BANNER if engine.model_info.is_demo else
          f"NOTE: model '{engine.model_info.model_id}' is not marked as a demo model; the phantom is synthetic.",
          file=report)
    if progress is not None:
        progress("phantom", 0.0, f"generating phantom seed {args.seed}")
    phantom = generate_phantom(PhantomConfig(seed=args.seed))
    if progress is not None:
        progress("phantom", 0.08, "phantom ready")
    result = engine.run(phantom.exam, progress=scaled(progress, 0.08, 0.9))
    evaluation = evaluate_segmentation(result.lesion_labels, phantom.lesion_labels,
                                       min_lesion_volume_mm3=engine.min_lesion_volume_mm3)
    breast_eval = evaluate_segmentation(result.breast_mask, phantom.breast_mask, surface_distances_mm=False)
    extra = {
        "demo": {
            "phantom_seed": args.seed,
            "truth_lesions": phantom.lesions,
            "evaluation_vs_phantom_truth": evaluation,
            "breast_region_dice_vs_phantom_truth": breast_eval["dice"],
        }
    }
    if progress is not None:
        progress("write_outputs", 0.92, str(out))
    write_outputs(result, phantom.exam, out, overwrite=args.force, extra_metrics=extra,
                  title=f"phantom seed {args.seed}: {result.n_lesions} lesion(s) found, "
                        f"{len(phantom.lesions)} in the truth")
    try:
        write_phantom(phantom, out / "phantom_inputs")
    except (BreastLesionSegError, OSError) as exc:  # the results are complete; the inputs are a convenience
        log.warning("could not write the phantom inputs into %s: %s", out / "phantom_inputs", exc)
    if progress is not None:
        progress("write_outputs", 1.0, str(out))

    det = evaluation["detection"]["counts"]
    true_volumes = ", ".join("%.0f mm3" % les["volume_mm3"] for les in phantom.lesions) or "none"
    print(f"Phantom seed {args.seed}: {len(phantom.lesions)} true lesion(s) ({true_volumes})", file=report)
    print(format_lesion_table(result.metrics), file=report)
    dice = evaluation["dice"]
    print(f"Dice against the phantom truth: {'n/a' if dice is None else f'{dice:.3f}'}; lesions detected "
          f"{det['tp']}, missed {det['fn']}, false positives {det['fp']}; breast-region Dice "
          f"{breast_eval['dice']:.3f}", file=report)
    print(f"device: {result.device}; segmentation time {result.timings_s['total']:.1f} s", file=report)
    print(f"Outputs: {out.resolve()} (segmentation.seg.nrrd, lesions.nii.gz, breast_mask.nii.gz, metrics.json, "
          f"overview.png; phantom inputs in phantom_inputs/)", file=report)
    if engine.model_info.is_demo:
        print(DEMO_BANNER, file=report)
    return out
