"""``breastlesionseg evaluate``: compare a predicted lesion map with a reference lesion map.

Both files are label maps on the same grid (NIfTI / NRRD / MHA); any non-zero voxel is lesion. Lesion
instances are the labels as given, or connected components when a map is binary. Prints a readable
report, or the full result as JSON with ``--json``. Exit code 2 on bad input (e.g. different grids).
"""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate",
        help="Dice/IoU/precision/recall, HD95/ASD (mm) and lesion-wise detection of a prediction vs a reference",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--prediction", required=True, metavar="P", help="predicted lesion label map")
    p.add_argument("--reference", required=True, metavar="R", help="reference (ground-truth) lesion label map")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument(
        "--min-lesion-mm3", type=float, default=0.0, metavar="V",
        help="ignore lesions smaller than V mm3 in the lesion-wise detection (default 0)",
    )
    p.add_argument(
        "--min-iou", type=float, default=0.0, metavar="T",
        help="IoU a predicted/reference lesion pair needs to match (default 0: any overlap)",
    )
    p.set_defaults(func=run)


def _f(value, spec: str = "{:.4f}") -> str:
    return "n/a" if value is None else spec.format(value)


def format_report(result: dict) -> str:
    """Human-readable text of an :func:`~breastlesionseg.metrics.evaluate_segmentation` result."""
    det = result["detection"]
    lines = [
        f"prediction: {result['prediction']}",
        f"reference:  {result['reference']}",
        f"voxel-wise: Dice {_f(result['dice'])}  IoU {_f(result['iou'])}  precision {_f(result['precision'])}  "
        f"recall {_f(result['recall'])}",
        f"volumes:    prediction {result['prediction_volume_mm3']:.1f} mm3, "
        f"reference {result['reference_volume_mm3']:.1f} mm3",
        f"surface:    HD95 {_f(result['hd95_mm'], '{:.2f}')} mm  ASD {_f(result['asd_mm'], '{:.2f}')} mm"
        + (f"  ({result['surface_distance_note']})" if result.get("surface_distance_note") else ""),
        f"lesion-wise ({det['rule']}):",
        f"  {'volume bin':<12}{'TP':>5}{'FP':>5}{'FN':>5}",
    ]
    names = {"lt10": "< 10 mm3", "10to20": "10-20 mm3", "gt20": "> 20 mm3"}
    for key, c in det["counts_by_volume_mm3"].items():
        lines.append(f"  {names.get(key, key):<12}{c['tp']:>5}{c['fp']:>5}{c['fn']:>5}")
    c = det["counts"]
    lines.append(f"  {'all':<12}{c['tp']:>5}{c['fp']:>5}{c['fn']:>5}   sensitivity {_f(det['sensitivity'], '{:.3f}')}")
    for r in det["reference_lesions"]:
        status = "MISSED"
        if r["detected"]:
            status = f"detected by {r['matched_prediction_labels']} (IoU {r['best_iou']:.2f})"
        lines.append(f"  reference lesion {r['reference_label']} ({r['volume_mm3']:.1f} mm3): {status}")
    for p in det["predicted_lesions"]:
        if not p["true_positive"]:
            lines.append(f"  predicted lesion {p['prediction_label']} ({p['volume_mm3']:.1f} mm3): false positive")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation; returns the exit code."""
    from ..io import read_label_volume
    from ..metrics import evaluate_segmentation

    prediction = read_label_volume(args.prediction)
    reference = read_label_volume(args.reference)
    result = evaluate_segmentation(
        prediction, reference, min_lesion_volume_mm3=args.min_lesion_mm3, min_iou=args.min_iou
    )
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        print(format_report(result))
    return 0
