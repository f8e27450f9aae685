"""Describe exam inputs without assembling the exam: size, spacing, orientation, intensities, grid check.

What ``breastlesionseg inspect`` prints. For each phase: size, spacing, orientation code, origin, stored
pixel type and intensity range; then the grid check against the first (pre-contrast) phase: same grid,
would be resampled (with the overlap), or not overlapping. A single DICOM study folder is scanned and
the dynamic series chosen are listed with the reason.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import Geometry, Volume
from .loader import default_phase_names
from .validation import coverage_fraction, overlap_fraction

log = logging.getLogger(__name__)


def _phase_record(volume: Volume, name: str, ref: Geometry | None) -> dict:
    arr = volume.array
    geo = volume.geometry
    record = {
        "name": name,
        "source": volume.source,
        **geo.to_dict(),
        "pixel_type": volume.metadata.get("pixel_type", str(arr.dtype)),
        "intensity_min": float(arr.min()),
        "intensity_max": float(arr.max()),
        "intensity_mean": float(arr.mean(dtype=np.float64)),
    }
    if "dicom" in volume.metadata:
        record["dicom"] = volume.metadata["dicom"]
    if ref is None:
        record["grid"] = "reference"
        record["overlap_percent"] = 100.0
    elif geo.same_grid(ref):
        record["grid"] = "same grid"
        record["overlap_percent"] = 100.0
    else:
        frac = max(overlap_fraction(geo, ref), overlap_fraction(ref, geo))
        record["overlap_percent"] = round(100.0 * frac, 1)
        record["covers_pre_percent"] = round(100.0 * coverage_fraction(ref, geo), 1)  # pre voxels it fills
        record["grid"] = "resampled onto the pre-contrast grid" if frac > 0 else "NOT OVERLAPPING"
    return record


def inspect_inputs(inputs: Sequence[str | os.PathLike]) -> dict:
    """Describe exam inputs without assembling the exam.

    Args:
        inputs: phase files / DICOM series folders in time order, or one DICOM study folder.

    Returns:
        JSON-ready dict: ``inputs``, ``phases`` (one record per phase: geometry, ``pixel_type``,
        ``intensity_min/max/mean``, ``grid`` and ``overlap_percent``), ``grid_check`` (summary text),
        ``ok`` (false when a phase does not overlap the pre-contrast phase), ``dicom_selection``
        (explanation text, for a study folder) and ``warnings``.

    Raises:
        InputError: missing/unreadable input, 2D/4D/vector image, zero voxels, constant or NaN/Inf volume.
    """
    from ..io.dicom import read_series_image, scan_dicom_study, select_dynamic_series
    from ..io.volume_io import check_volume_values, read_volume

    paths = [Path(p) for p in inputs]
    report: dict = {"inputs": [str(p) for p in paths], "warnings": []}
    volumes: list[Volume] = []
    study = scan_dicom_study(paths[0]) if len(paths) == 1 and paths[0].is_dir() else []
    if len(study) > 1:
        chosen, explanation = select_dynamic_series(study)
        report["dicom_selection"] = explanation
        for info in chosen:
            image = read_series_image(info)
            vol = Volume(sitk.GetArrayFromImage(image), Geometry.from_sitk(image),
                         source=f"{paths[0]} [series {info.label}]",
                         metadata={"pixel_type": image.GetPixelIDTypeAsString(), "dicom": info.to_dict()})
            check_volume_values(vol)
            volumes.append(vol)
    elif len(study) == 1:  # a single series folder
        volumes = [read_volume(paths[0], dtype=None)]
    else:
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise InputError(f"input(s) not found: {', '.join(repr(m) for m in missing)}")
        volumes = [read_volume(p, dtype=None) for p in paths]
    names = default_phase_names(len(volumes))
    ref = volumes[0].geometry
    report["phases"] = [_phase_record(v, n, None if i == 0 else ref) for i, (v, n) in
                        enumerate(zip(volumes, names))]
    grids = [r["grid"] for r in report["phases"][1:]]
    if len(volumes) < 2:
        report["warnings"].append("only one phase: a DCE exam needs a pre-contrast and at least one post-contrast "
                                  "phase")
    if "NOT OVERLAPPING" in grids:
        bad = [r["source"] for r in report["phases"] if r["grid"] == "NOT OVERLAPPING"]
        report["grid_check"] = f"not overlapping: {', '.join(bad)} do(es) not overlap the pre-contrast phase " \
                               f"'{report['phases'][0]['source']}'"
        report["ok"] = False
    elif any(g != "same grid" for g in grids):
        n = sum(g != "same grid" for g in grids)
        report["grid_check"] = f"{n} phase(s) on another grid would be resampled onto the pre-contrast grid"
        report["ok"] = True
    else:
        report["grid_check"] = f"all {len(volumes)} phases on the same grid"
        report["ok"] = True
    _check_exam_rules(report, volumes, names)
    return report


def _check_exam_rules(report: dict, volumes: list[Volume], names: list[str]) -> None:
    """The rules of :mod:`breastlesionseg.exam.validation` that ``segment`` applies: memory, phase order."""
    from ..exam.resample import resample_to_grid
    from ..exam.validation import check_phase_order_signal, default_memory_budget_bytes, estimate_exam_memory_bytes

    estimate = estimate_exam_memory_bytes(volumes[0].geometry.size, len(volumes))
    budget = default_memory_budget_bytes()
    report["memory_estimate_gib"] = round(estimate / (1 << 30), 2)
    if estimate > budget:
        report["warnings"].append(f"segmenting needs about {estimate / (1 << 30):.1f} GiB, more than the memory "
                                  f"budget of {budget / (1 << 30):.1f} GiB: segment would refuse this exam")
        report["ok"] = False
    if len(volumes) < 2 or not report["ok"]:
        return
    ref = volumes[0].geometry
    arrays = [v.array if v.geometry.same_grid(ref) else resample_to_grid(v, ref).array for v in volumes]
    check = check_phase_order_signal(arrays, names)
    report["phase_order"] = {"plausible": check.plausible, "least_enhanced": names[check.least_enhanced],
                             "mean_dynamic_signal": list(check.mean_signal), "measurable": check.measurable}
    if not check.plausible:
        report["phase_order_problem"] = (
            f"implausible phase order: '{names[check.least_enhanced]}' is the least enhanced phase, not the first "
            f"(mean signal of the most dynamic voxels: {check.describe()}); pass the phases in time order, "
            f"pre-contrast first")
        report["ok"] = False


def _fmt3(values: Sequence[float], digits: int = 4) -> str:
    return " x ".join(f"{v:.{digits}g}" for v in values)


def format_report(report: dict) -> str:
    """Human-readable text of :func:`inspect_inputs`'s report."""
    lines = []
    if "dicom_selection" in report:
        lines.append("DICOM study: " + report["dicom_selection"].replace("\n", "\n  "))
    n = len(report["phases"])
    for i, r in enumerate(report["phases"]):
        lines.append(f"phase {i + 1}/{n} {r['name']}: {r['source']}")
        lines.append(f"  size {_fmt3(r['size_xyz'])} voxels, spacing {_fmt3(r['spacing_mm_xyz'])} mm, orientation "
                     f"{r['orientation']}, origin ({', '.join(f'{v:.2f}' for v in r['origin_lps_mm'])}) mm LPS")
        direction = np.abs(np.asarray(r["direction_lps"]))
        if not np.allclose(direction, np.round(direction), atol=1e-4):  # not a permutation of the axes
            lines.append(f"  oblique direction (LPS, row-major): {', '.join(f'{v:.4f}' for v in r['direction_lps'])}")
        lines.append(f"  {r['pixel_type']}, intensity {r['intensity_min']:.6g} .. {r['intensity_max']:.6g} "
                     f"(mean {r['intensity_mean']:.4g})")
        if i:
            extra = f" ({r['overlap_percent']:.0f}% overlap)" if r["grid"] != "same grid" else ""
            if "covers_pre_percent" in r:
                extra += f", fills {r['covers_pre_percent']:.0f}% of the pre-contrast voxels"
            lines.append(f"  grid: {r['grid']}{extra}")
        else:
            lines.append("  grid: reference (pre-contrast)")
    lines.append(f"grid check: {report['grid_check']}")
    if "phase_order" in report:
        order = report["phase_order"]
        lines.append("phase order: " + (report.get("phase_order_problem") or (
            "plausible (the first phase is the least enhanced)" if order["measurable"]
            else "not judged (no measurable enhancement)")))
    if "memory_estimate_gib" in report:
        lines.append(f"memory needed to segment: about {report['memory_estimate_gib']:.1f} GiB")
    lines.extend(f"warning: {w}" for w in report["warnings"])
    return "\n".join(lines)
