"""The lesion metrics table: per-lesion shape + kinetics, totals, breast volumes (JSON-ready).

``lesion_metrics`` is what ``segment`` writes to ``metrics.json`` and what the Slicer module shows after
"Update metrics" on edited segments. See :mod:`.lesion_shape` and :mod:`.kinetics` for every definition.
"""
from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..exam.dce_exam import DCEExam
from ..geometry import Geometry, Volume
from ..labels import BREAST_LEFT, BREAST_RIGHT, lesion_segment_name
from ._inputs import label_array
from .kinetics import (CURVE_TYPE_REFERENCE, FTV_REFERENCE, PE_DEFINITION, KineticsConfig, lesion_kinetics,
                       pre_reference_signal)
from .lesion_shape import MM3_PER_ML, lesion_shape_metrics

log = logging.getLogger(__name__)


def breast_volumes(breast_mask: Volume | np.ndarray, geometry: Geometry | None = None) -> dict:
    """Volumes of the left (label 1) and right (label 2) breast.

    Args:
        breast_mask: ``(z, y, x)`` mask 0 / 1 (patient's left) / 2 (patient's right), a :class:`Volume` or
            an array together with ``geometry``.
        geometry: the grid of an array mask (ignored for a Volume).

    Returns:
        ``{"left_ml", "right_ml", "total_ml", "left_mm3", "right_mm3", "total_mm3"}``.
    """
    if isinstance(breast_mask, Volume):
        geometry = breast_mask.geometry
    if geometry is None:
        raise InputError("breast_volumes: pass a Volume, or an array together with its geometry")
    mask = label_array(breast_mask, geometry, "breast_mask")
    if mask.size and mask.max() > BREAST_RIGHT:
        bad = np.setdiff1d(np.unique(mask[mask > BREAST_RIGHT]), []).tolist()
        raise InputError(f"breast_mask: labels must be 0, 1 (left) or 2 (right); found {bad}")
    vox = geometry.voxel_volume_mm3
    left = float(np.count_nonzero(mask == BREAST_LEFT)) * vox
    right = float(np.count_nonzero(mask == BREAST_RIGHT)) * vox
    return {
        "left_mm3": left,
        "right_mm3": right,
        "total_mm3": left + right,
        "left_ml": left / MM3_PER_ML,
        "right_ml": right / MM3_PER_ML,
        "total_ml": (left + right) / MM3_PER_ML,
    }


def lesion_metrics(
    exam: DCEExam,
    lesion_labels: Volume | np.ndarray,
    breast_mask: Volume | np.ndarray | None = None,
    pe_threshold_percent: float = 70.0,
    early_phase: int = 1,
    late_phase: int = -1,
    ftv_ser_min: float | None = None,
    min_pre_signal: float = 0.0,
    pe_floor_fraction: float = 1.0,
) -> dict:
    """Metrics of every lesion of an exam and their totals.

    Args:
        exam: the DCE exam (phases on one grid).
        lesion_labels: ``(z, y, x)`` ints on the exam grid, 0 background, 1..N lesions (gaps allowed, e.g. after
            a segment was deleted in Slicer); a Volume must be on the exam grid.
        breast_mask: optional ``(z, y, x)`` breast mask (0 / 1 left / 2 right) on the exam grid; gives the
            lesion side and the breast volumes.
        pe_threshold_percent: early percent enhancement threshold of the FTV (default 70 %).
        early_phase: early post-contrast phase index (1 = first post-contrast phase).
        late_phase: late phase index (-1 = last phase).
        ftv_ser_min: optional SER cut-off of the FTV (Hylton variant); None = PE threshold only.
        min_pre_signal: without a noise floor, voxels with pre-contrast signal <= this have no defined PE.
        pe_floor_fraction: the PE denominator is at least this fraction of the median pre-contrast signal inside
            the breast mask (the body without one); 0 = the classic ``(Sk - S0) / S0``. See
            :mod:`~breastlesionseg.metrics.kinetics`.

    Returns:
        JSON-ready dict::

            {"lesions": [{"label", "name", "voxel_count", "volume_mm3", "volume_ml",
                          "longest_3d_diameter_mm", "longest_axial_diameter_mm",
                          "centroid_lps_mm", "centroid_ras_mm", "side", "side_source",
                          "mean_pe_early_percent", "peak_pe_early_percent", "ser_mean", "ser_of_mean_curve",
                          "late_change_percent", "kinetic_curve_type", "curve_type_fractions",
                          "enhancing_voxel_count", "ftv_voxel_count", "ftv_mm3", "ftv_ml",
                          "time_intensity_curve": [{"phase_index", "phase_name", "time_s", "mean_signal",
                                                    "mean_percent_enhancement_percent"}, ...], ...}, ...],
             "totals": {"lesion_count", "total_volume_mm3", "total_volume_ml", "total_ftv_mm3", "total_ftv_ml"},
             "breast_volumes": {...} | None, "parameters": {...}, "definitions": {...}}

        Lesions are listed in label order; undefined values are None.

    Raises:
        InputError / GeometryError: labels or mask not on the exam grid, not integer, bad phase indices.
    """
    if not isinstance(exam, DCEExam):
        raise InputError(f"exam must be a DCEExam, got {type(exam).__name__}")
    config = KineticsConfig(
        pe_threshold_percent=pe_threshold_percent,
        early_phase=early_phase,
        late_phase=late_phase,
        ftv_ser_min=ftv_ser_min,
        min_pre_signal=min_pre_signal,
        pe_floor_fraction=pe_floor_fraction,
    )
    early, late = config.resolve_phases(len(exam.phases))
    geometry = exam.geometry
    labels = label_array(lesion_labels, geometry, "lesion_labels")
    mask = label_array(breast_mask, geometry, "breast_mask") if breast_mask is not None else None

    reference = pre_reference_signal(exam.pre.array, mask > 0 if mask is not None else None)
    lesions = _lesion_entries(exam, labels, mask, config, reference)

    total_mm3 = float(sum(l["volume_mm3"] for l in lesions))
    total_ftv_mm3 = float(sum(l["ftv_mm3"] for l in lesions))
    cfg = config.to_dict()
    cfg.update({"early_phase_index": early, "late_phase_index": late, "pre_reference_signal": reference,
                "pe_denominator_floor_signal": config.pe_floor_fraction * reference})
    return {
        "lesions": lesions,
        "totals": {
            "lesion_count": len(lesions),
            "total_volume_mm3": total_mm3,
            "total_volume_ml": total_mm3 / MM3_PER_ML,
            "total_ftv_mm3": total_ftv_mm3,
            "total_ftv_ml": total_ftv_mm3 / MM3_PER_ML,
        },
        "breast_volumes": breast_volumes(mask, geometry) if mask is not None else None,
        "parameters": cfg,
        "definitions": dict(DEFINITIONS),
    }


#: what the metrics mean (copied into every metrics document)
DEFINITIONS = {
    "kinetic_curve_type": CURVE_TYPE_REFERENCE,
    "ftv": FTV_REFERENCE,
    "percent_enhancement": PE_DEFINITION,
    "longest_3d_diameter_mm": "largest distance between surface voxel centres (physical space)",
    "longest_axial_diameter_mm": "largest in-slice distance between voxel centres over the axial-most slices",
    "side": "patient's left = +x in LPS; from the breast mask, else the centroid vs the midline",
}


def _lesion_entries(exam: DCEExam, labels: np.ndarray, mask: np.ndarray | None, config: KineticsConfig,
                    reference: float) -> list[dict]:
    """Shape + kinetics of every lesion label, in label order."""
    geometry = exam.geometry
    shapes = lesion_shape_metrics(labels, geometry, mask)
    objects = ndimage.find_objects(labels)
    times = exam.acquisition_times_s if exam.acquisition_times_s else None
    lesions = []
    for label, shape in shapes.items():
        sl = objects[label - 1]
        sel = labels[sl] == label
        signals = np.stack([np.asarray(p.array[sl], dtype=np.float64)[sel] for p in exam.phases])
        kin = lesion_kinetics(signals, config, geometry.voxel_volume_mm3, exam.names, times, pre_reference=reference)
        entry = {"label": label, "name": lesion_segment_name(label)}
        entry.update({k: v for k, v in shape.items() if k != "label"})
        entry.update(kin)
        lesions.append(entry)
    return lesions


#: columns of the human-readable table (key, header, format)
_TABLE_COLUMNS = (
    ("name", "lesion", "{}"),
    ("side", "side", "{}"),
    ("volume_ml", "vol mL", "{:.3f}"),
    ("longest_3d_diameter_mm", "3D diam mm", "{:.1f}"),
    ("longest_axial_diameter_mm", "axial diam mm", "{:.1f}"),
    ("mean_pe_early_percent", "mean PE %", "{:.0f}"),
    ("peak_pe_early_percent", "peak PE %", "{:.0f}"),
    ("ser_of_mean_curve", "SER", "{:.2f}"),
    ("kinetic_curve_type", "curve", "{}"),
    ("ftv_ml", "FTV mL", "{:.3f}"),
)


def lesion_rows(metrics: dict) -> list[dict]:
    """Flat rows (one per lesion, scalar values only) of a :func:`lesion_metrics` result, for tables."""
    rows = []
    for les in metrics["lesions"]:
        row = {k: v for k, v in les.items() if not isinstance(v, (list, dict))}
        for axis, value in zip("RAS", les["centroid_ras_mm"]):
            row[f"centroid_{axis}_ras_mm"] = value
        rows.append(row)
    return rows


def format_lesion_table(metrics: dict) -> str:
    """A plain-text table of a :func:`lesion_metrics` result (for the CLI)."""

    def fmt(value, spec: str) -> str:
        return "-" if value is None else spec.format(value)

    header = [h for _, h, _ in _TABLE_COLUMNS]
    body = [[fmt(les.get(k), f) for k, _, f in _TABLE_COLUMNS] for les in metrics["lesions"]]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [header] + body]
    t = metrics["totals"]
    lines.append(
        f"{t['lesion_count']} lesion(s), total volume {t['total_volume_ml']:.3f} mL, "
        f"total FTV {t['total_ftv_ml']:.3f} mL"
    )
    bv = metrics.get("breast_volumes")
    if bv:
        lines.append(f"breast volumes: left {bv['left_ml']:.1f} mL, right {bv['right_ml']:.1f} mL")
    return "\n".join(lines)
