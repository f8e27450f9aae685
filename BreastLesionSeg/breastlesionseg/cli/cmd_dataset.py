"""``breastlesionseg dataset add|check``: build and validate training datasets of corrected cases."""
from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``dataset`` sub-command (with ``add`` and ``check``)."""
    parser = subparsers.add_parser(
        "dataset", help="manage a training dataset of corrected cases (add, check)",
        description="Training datasets: <DATASET>/dataset.json (+ dataset.csv) and cases/<id>/ with NIfTI phases, "
                    "lesions.nii.gz and breast_mask.nii.gz.",
    )
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION")
    add = sub.add_parser("add", help="validate a case and add it to DATASET (created when absent)")
    add.add_argument("dataset", metavar="DATASET", help="dataset folder")
    add.add_argument("--case-id", required=True, help="unique case id (letters, digits, _ - .)")
    add.add_argument("--phases", nargs="+", required=True, metavar="PHASE",
                     help="pre-contrast then post-contrast phase files in time order (NIfTI/NRRD/MHA), one grid")
    add.add_argument("--phase-names", nargs="+", default=None, metavar="NAME",
                     help="phase names (default: pre post1 post2 ...)")
    labels = add.add_mutually_exclusive_group(required=True)
    labels.add_argument("--lesions", help="lesion label map (binary or instance labels) on the pre grid")
    labels.add_argument("--seg-nrrd", help="Slicer .seg.nrrd with 'Lesion k' (+ 'Breast left/right') segments")
    add.add_argument("--breast-mask", default=None,
                     help="breast mask 0/1/2 on the pre grid (default: from the .seg.nrrd, else computed)")
    add.add_argument("--corrected-by", default="", help="who corrected the segmentation")
    add.add_argument("--corrected-at", default=None, help="ISO time of the correction (default: now)")
    add.add_argument("--source", default="", help="provenance text (default: the phase paths)")
    add.add_argument("--notes", default="", help="free-text notes")
    add.add_argument("--force", action="store_true",
                     help="replace a case with the same id / accept duplicate images")
    add.add_argument("--json", action="store_true", help="print the new manifest record as JSON")
    add.set_defaults(func=_run_add)
    check = sub.add_parser("check", help="validate every case of DATASET; exit 1 when any problem is found")
    check.add_argument("dataset", metavar="DATASET", help="dataset folder")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--no-hash", action="store_true", help="skip the voxel hash comparison (faster)")
    check.set_defaults(func=_run_check)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _run_add(args: argparse.Namespace) -> int:
    from ..training.dataset_add import add_case

    record = add_case(
        args.dataset, args.case_id, args.phases, lesions=args.lesions, breast_mask=args.breast_mask,
        seg_nrrd=args.seg_nrrd, phase_names=args.phase_names, source=args.source, corrected_by=args.corrected_by,
        corrected_at=args.corrected_at, notes=args.notes, force=args.force,
    )
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
    else:
        print(f"added case '{record.case_id}' to {args.dataset}: {record.lesion_count} lesion(s), "
              f"{record.lesion_volume_mm3:.1f} mm3, breast mask {record.breast_mask_source}")
    return 0


def _run_check(args: argparse.Namespace) -> int:
    from ..training.dataset_check import check_dataset

    report = check_dataset(args.dataset, verify_hashes=not args.no_hash)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_text())
    sys.stdout.flush()
    return 0 if report.ok else 1
