"""``breastlesionseg inspect PHASE [PHASE ...] [--json]``: describe exam inputs and check their grids.

For each phase: size, spacing, orientation code, origin, stored pixel type and intensity range; then the
grid check against the first (pre-contrast) phase: same grid, would be resampled (with the overlap), or
not overlapping (exit code 2). A single DICOM study folder is scanned and the dynamic series chosen are
listed with the reason. Bad input (missing file, 2D/4D, NaN, constant ...) exits with code 2.
"""
from __future__ import annotations

import argparse
import json
import logging

from ..errors import GeometryError, InputError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``inspect`` sub-command."""
    parser = subparsers.add_parser(
        "inspect",
        help="describe exam phases (size, spacing, orientation, intensities) and check their grids",
        description="Describe the phases of a DCE-MRI exam and check that they share (or overlap) the pre-contrast "
                    "grid. PHASE: NIfTI/NRRD/MHA files or DICOM series folders in time order (pre-contrast first), "
                    "or one DICOM study folder (the dynamic series are found and ordered).",
    )
    parser.add_argument("phases", nargs="+", metavar="PHASE", help="phase files/folders, or one DICOM study folder")
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``inspect``; 0 when usable, 2 on bad input or phases that do not overlap."""
    from ..exam.inspection import format_report, inspect_inputs  # numpy / SimpleITK only when run

    report = inspect_inputs(args.phases)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    if not report["ok"]:
        if report.get("phase_order_problem"):
            raise InputError(report["phase_order_problem"])
        if report["grid_check"].startswith("not overlapping"):
            raise GeometryError(report["grid_check"])
        raise InputError("; ".join(report["warnings"]) or report["grid_check"])
    return 0
