"""``breastlesionseg breast-mask``: segment the left/right breast region of an exam.

Reads the phases in time order (pre-contrast first; a single pre-contrast image also works), writes
the breast mask (0 background, 1 patient's left, 2 patient's right) on the pre-contrast grid with
its exact geometry, and prints the breast volumes (mL), the optimized-volume crop box and the
fraction of the image it keeps. The output is written atomically and never overwrites a file
without ``--force``. Definition of the breast region: docs/breast_region.md.
"""
from __future__ import annotations

import argparse
import json
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``breast-mask`` sub-command."""
    p = subparsers.add_parser(
        "breast-mask",
        help="segment the left/right breast region (classical or model) and report volumes and the OV crop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("phases", nargs="+", metavar="PHASE",
                   help="phase images in time order (pre first): NIfTI / NRRD / MHA files or DICOM series folders")
    p.add_argument("--output", "-o", required=True, metavar="MASK", help="output mask file (e.g. breast_mask.nii.gz)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--margin-mm", type=float, default=16.0, metavar="M",
                   help="safe margin of the optimized-volume crop in mm (default 16)")
    p.add_argument("--multiple", type=int, default=16, metavar="N",
                   help="crop sides are multiples of N voxels (2**levels of the network; default 16)")
    p.add_argument("--method", choices=("classical", "model"), default="classical",
                   help="classical (no training data; default) or a learned breast-region model")
    p.add_argument("--model", default=None, metavar="ID_OR_DIR", help="breast-region model (with --method model)")
    p.add_argument("--device", default="cpu", help="torch device of the model path (cpu, cuda, auto)")
    p.set_defaults(func=run)


def _load(paths: list[str]):
    """One phase -> [Volume]; several -> the DCEExam (resampled onto the pre grid)."""
    from ..exam import load_exam
    from ..io import read_volume

    if len(paths) == 1:
        return [read_volume(paths[0])]
    return load_exam(paths)


def run(args: argparse.Namespace) -> int:
    """Segment, write the mask, print the report; returns the exit code."""
    from ..breast import BreastRegionConfig, compute_crop, segment_breast_region
    from ..errors import InputError
    from ..io import write_volume

    if args.margin_mm < 0:
        raise InputError(f"--margin-mm must be >= 0, got {args.margin_mm}")
    if args.multiple < 1:
        raise InputError(f"--multiple must be >= 1, got {args.multiple}")
    from pathlib import Path

    out = Path(args.output)
    if out.exists() and not args.force:
        raise InputError(f"refusing to overwrite existing file '{out}' (use --force)")
    config = BreastRegionConfig(method=args.method, model=args.model, device=args.device)
    t0 = time.perf_counter()
    exam = _load(args.phases)
    read_s = time.perf_counter() - t0
    result = segment_breast_region(exam, config)
    write_volume(result.mask, out, overwrite=args.force)
    report = result.to_dict()
    report["output"] = str(out)
    report["inputs"] = [str(p) for p in args.phases]
    report["timings_s"]["read_s"] = read_s
    if result.volumes_ml["total"] > 0:
        crop = compute_crop(result.mask, margin_mm=args.margin_mm, multiple=args.multiple)
        report["crop"] = crop.to_dict()
        report["crop"]["margin_mm"] = args.margin_mm
        report["crop"]["multiple"] = args.multiple
    else:
        report["crop"] = None
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    v = result.volumes_ml
    print(f"breast mask: {out}  (method {result.method}, {result.timings_s.get('total_s', 0.0):.2f} s)")
    print(f"volumes: left {v['left']:.1f} mL, right {v['right']:.1f} mL, total {v['total']:.1f} mL")
    for warning in result.warnings:
        print(warning)
    if report["crop"] is None:
        print("no breast region found: no crop")
    else:
        c = report["crop"]
        print(f"crop (z, y, x): start {tuple(c['start_zyx'])} stop {tuple(c['stop_zyx'])} shape {tuple(c['shape_zyx'])}"
              f" of {tuple(c['full_shape_zyx'])}{' (padded)' if c['padded'] else ''}")
        print(f"fraction of the image kept by the crop: {100.0 * c['fraction_kept']:.1f} %")
    return 0
