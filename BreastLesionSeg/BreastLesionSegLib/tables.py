"""The lesion table node: one row per lesion (plus a total row) from ``lesion_metrics`` output.

Rows are the core's flat rows (``breastlesionseg.metrics.lesion_rows``: every scalar per-lesion
field, in its order), so new metrics appear without changing this file. The first column is the
segment name (what the radiologist sees in Segment Editor); units come from the field-name suffix
(``_mm3`` -> mm3, ``_ml`` -> mL, ``_percent`` -> %) and are set as column unit labels. The total row
takes the ``totals`` fields ``total_<field>`` into the ``<field>`` column.

The candidate table (:func:`fill_candidate_table`) lists a DCE-MRI run's low-confidence candidates
(``metrics.json["candidates"]``), one row each: segment name, candidate label, confidence (0-1),
volume (mm3) and whether the reader promoted it to a lesion.
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
    ("_percent", "%"),
)
SEGMENT_COLUMN = "Segment"
#: fields of lesion_metrics not shown as columns (the segment name replaces "name")
HIDDEN_FIELDS = ("name",)


def unit_of(field: str) -> str:
    """Unit label of a metric field from its suffix ('' when none)."""
    for suffix, unit in UNIT_SUFFIXES:
        if field.endswith(suffix):
            return unit
    return ""


def metric_rows(metrics: dict) -> list[dict]:
    """Flat scalar rows of a ``lesion_metrics`` result, one per lesion, in lesion order.

    Raises:
        ValueError: ``metrics`` has no ``lesions`` list.
    """
    if not isinstance(metrics, dict) or not isinstance(metrics.get("lesions"), list):
        raise ValueError("metrics must be a dict with a 'lesions' list (breastlesionseg.metrics.lesion_metrics)")
    from breastlesionseg.metrics import lesion_rows

    rows = []
    for row in lesion_rows(metrics):
        rows.append({k: ("yes" if v else "no") if isinstance(v, bool) else v
                     for k, v in row.items() if k not in HIDDEN_FIELDS})
    return rows


def _column_kind(values: Sequence[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and len(present) == len(values) and all(isinstance(v, int) for v in present):
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
    rows = metric_rows(metrics)
    names = list(lesion_names) if lesion_names is not None else [f"Lesion {k}" for k in range(1, len(rows) + 1)]
    if len(names) != len(rows):
        raise ValueError(f"{len(names)} lesion names for {len(rows)} lesion rows")
    totals = metrics.get("totals") if total_row else None
    if isinstance(totals, dict) and rows:
        rows.append({k: totals.get(f"total_{k}") for k in rows[0]})
        names.append("Total")
    return fill_table_rows(table_node, rows, names)


def fill_table_rows(table_node: Any, rows: Sequence[dict], names: Sequence[str]) -> Any:
    """Replace the contents of ``table_node`` with ``rows`` (flat dicts of scalars), the first column holding
    ``names`` (the segment names); column types from the values, units from the field names. Returns the node."""
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


#: columns of the candidate table after the segment name, with their descriptions (shown as tooltips)
CANDIDATE_COLUMNS = {
    "candidate_id": "label of the candidate in candidates.nii.gz (metrics.json candidates 'id')",
    "confidence": "per-lesion confidence (0-1) of the model card's confidence model; below its report threshold",
    "volume_mm3": "candidate volume as reported by the run (mm3)",
    "promoted": "yes: the reader made it a lesion (it is then a row of the lesion table too)",
}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def fill_candidate_table(table_node: Any, rows: Sequence[dict]) -> Any:
    """Replace the contents of ``table_node`` with one row per low-confidence candidate.

    Args:
        table_node: ``vtkMRMLTableNode`` to fill (its columns are replaced).
        rows: dicts with ``Segment`` (the segment's current name), ``candidate_id`` (label in
            ``candidates.nii.gz``), ``confidence`` (0-1), ``volume_mm3`` (mm3) and ``promoted`` (bool);
            a missing number is shown as NaN.

    Returns:
        ``table_node`` (locked; column ``volume_mm3`` has the unit label mm3).

    Raises:
        ValueError: a row has no ``Segment`` or ``candidate_id``.
    """
    flat, names = [], []
    for row in rows:
        if not row.get("Segment") or not isinstance(row.get("candidate_id"), int):
            raise ValueError(f"a candidate row needs a 'Segment' name and an integer 'candidate_id', got {row}")
        names.append(str(row["Segment"]))
        flat.append({"candidate_id": int(row["candidate_id"]), "confidence": _number(row.get("confidence")),
                     "volume_mm3": _number(row.get("volume_mm3")), "promoted": "yes" if row.get("promoted") else "no"})
    fill_table_rows(table_node, flat, names)
    for column, description in CANDIDATE_COLUMNS.items():
        table_node.SetColumnDescription(column, description)
    return table_node


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
