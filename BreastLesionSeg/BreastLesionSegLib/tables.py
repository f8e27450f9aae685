"""The lesion table node: one row per lesion (plus a total row) from ``lesion_metrics`` output.

The table is built from whatever scalar per-lesion fields ``breastlesionseg.metrics.lesion_metrics``
returns (JSON-ready dict), in their order, so new metrics appear without changing this file.
Units come from the field-name suffix (``_mm3`` -> mm3, ``_ml`` -> mL, ...) and are set as the
column unit label; 3-vectors (centroids) become three columns ``..._x/_y/_z``.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Sequence

import vtk

log = logging.getLogger(__name__)

#: field-name suffix -> unit label shown in the table header
UNIT_SUFFIXES = (
    ("_mm3", "mm3"), ("_mm2", "mm2"), ("_mm", "mm"), ("_ml", "mL"), ("_cm3", "cm3"), ("_s", "s"),
    ("_percent", "%"), ("_pct", "%"),
)
SEGMENT_COLUMN = "Segment"
#: per-lesion fields that are series, not table cells (shown in the kinetic plot instead)
SERIES_FIELDS = ("time_intensity_curve", "mean_curve", "curve")


def unit_of(field: str) -> str:
    """Unit label of a metric field from its suffix ('' when none)."""
    for suffix, unit in UNIT_SUFFIXES:
        if field.endswith(suffix):
            return unit
    return ""


def lesion_rows(metrics: dict) -> list[dict]:
    """The per-lesion dicts of a ``lesion_metrics`` result (key ``lesions``), in lesion order.

    Raises:
        ValueError: ``metrics`` has no ``lesions`` list.
    """
    lesions = metrics.get("lesions") if isinstance(metrics, dict) else None
    if not isinstance(lesions, list):
        raise ValueError("metrics must be a dict with a 'lesions' list (breastlesionseg.metrics.lesion_metrics)")
    return lesions


def _flatten(row: dict) -> dict[str, Any]:
    """Scalar cells of one lesion dict: numbers/strings/bools kept, 3-vectors split, series and dicts skipped."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if any(key.startswith(s) for s in SERIES_FIELDS):
            continue
        if isinstance(value, bool):
            out[key] = "yes" if value else "no"
        elif isinstance(value, (int, float, str)) or value is None:
            out[key] = value
        elif isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value):
            base, unit = key, ""
            for suffix, _ in UNIT_SUFFIXES:
                if key.endswith(suffix):
                    base, unit = key[: -len(suffix)], suffix
                    break
            for axis, v in zip("xyz", value):
                out[f"{base}_{axis}{unit}"] = v
    return out


def _column_kind(values: Sequence[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "double"
    return "string"


def fill_lesion_table(table_node: Any, metrics: dict, lesion_names: Sequence[str] | None = None,
                      total_row: bool = True) -> Any:
    """Replace the contents of ``table_node`` with one row per lesion (and a "Total" row).

    Args:
        table_node: ``vtkMRMLTableNode`` to fill (its columns are replaced).
        metrics: ``lesion_metrics`` output: ``{"lesions": [ {...}, ... ], "totals": {...}?, ...}``.
        lesion_names: segment name of each lesion row (default "Lesion k").
        total_row: append the ``totals`` dict as a row named "Total" when present.

    Returns:
        ``table_node``.
    """
    rows = [_flatten(r) for r in lesion_rows(metrics)]
    names = list(lesion_names) if lesion_names is not None else [f"Lesion {k}" for k in range(1, len(rows) + 1)]
    if len(names) != len(rows):
        raise ValueError(f"{len(names)} lesion names for {len(rows)} lesion rows")
    totals = metrics.get("totals") if total_row else None
    if isinstance(totals, dict) and rows:
        flat_totals = _flatten(totals)
        rows.append({k: flat_totals.get(k) for k in rows[0]})
        names.append("Total")
    columns: list[str] = []
    for r in rows:
        for key in r:
            if key not in columns:
                columns.append(key)
    table = vtk.vtkTable()
    name_col = vtk.vtkStringArray()
    name_col.SetName(SEGMENT_COLUMN)
    table.AddColumn(name_col)
    kinds = {}
    for c in columns:
        kinds[c] = _column_kind([r.get(c) for r in rows])
        arr = {"int": vtk.vtkIntArray, "double": vtk.vtkDoubleArray, "string": vtk.vtkStringArray}[kinds[c]]()
        arr.SetName(c)
        table.AddColumn(arr)
    table.SetNumberOfRows(len(rows))
    for r, (name, row) in enumerate(zip(names, rows)):
        table.SetValue(r, 0, vtk.vtkVariant(str(name)))
        for c, key in enumerate(columns, start=1):
            v = row.get(key)
            if kinds[key] == "string":
                cell = "" if v is None else str(v)
            elif v is None:
                cell = math.nan if kinds[key] == "double" else 0
            else:
                cell = v
            table.SetValue(r, c, vtk.vtkVariant(cell))
    table_node.SetAndObserveTable(table)
    for key in columns:
        unit = unit_of(key)
        if unit:
            table_node.SetColumnUnitLabel(key, unit)
    table_node.SetLocked(True)  # results, not user input: edits happen on the segments
    table_node.Modified()
    return table_node


def create_lesion_table(scene: Any, metrics: dict, lesion_names: Sequence[str] | None = None,
                        name: str = "Lesion table") -> Any:
    """A new ``vtkMRMLTableNode`` filled by :func:`fill_lesion_table`."""
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    return fill_lesion_table(node, metrics, lesion_names)


def table_to_dicts(table_node: Any) -> list[dict[str, Any]]:
    """Rows of a table node as dicts (column name -> python value); for tests and export."""
    table = table_node.GetTable()
    out = []
    for r in range(table.GetNumberOfRows()):
        row = {}
        for c in range(table.GetNumberOfColumns()):
            col = table.GetColumn(c)
            v = table.GetValue(r, c)
            if col.IsA("vtkStringArray"):
                row[col.GetName()] = v.ToString()
            elif col.IsA("vtkIntArray"):
                row[col.GetName()] = v.ToInt()
            else:
                row[col.GetName()] = v.ToDouble()
        out.append(row)
    return out
