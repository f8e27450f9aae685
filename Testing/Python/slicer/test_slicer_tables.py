"""Lesion table node from a lesion_metrics-shaped dict (real vtkMRMLTableNode)."""
from __future__ import annotations

import math

import pytest

from BreastLesionSegLib import tables

METRICS = {
    "lesions": [
        {"index": 1, "volume_mm3": 1440.0, "volume_ml": 1.44, "longest_diameter_mm": 21.5,
         "centroid_ras_mm": [10.0, -20.0, 5.5], "side": "left", "kinetic_curve_type": "washout",
         "time_intensity_curve": [100.0, 300.0, 250.0], "n_voxels": 120, "enhancing": True},
        {"index": 2, "volume_mm3": 216.0, "volume_ml": 0.216, "longest_diameter_mm": 8.0,
         "centroid_ras_mm": [-30.0, -22.0, 4.0], "side": "right", "kinetic_curve_type": "plateau",
         "time_intensity_curve": [100.0, 250.0, 245.0], "n_voxels": 18, "enhancing": False},
    ],
    "totals": {"volume_mm3": 1656.0, "volume_ml": 1.656, "n_voxels": 138},
}


def test_table_rows_columns_units(ctx):
    node = tables.create_lesion_table(ctx.scene, METRICS, ["Lesion 1", "Lesion 2"])
    rows = tables.table_to_dicts(node)
    assert [r["Segment"] for r in rows] == ["Lesion 1", "Lesion 2", "Total"]
    assert rows[0]["volume_mm3"] == pytest.approx(1440.0) and rows[1]["side"] == "right"
    assert rows[0]["centroid_ras_x_mm"] == pytest.approx(10.0) and rows[1]["centroid_ras_z_mm"] == pytest.approx(4.0)
    assert rows[0]["n_voxels"] == 120 and rows[2]["n_voxels"] == 138
    assert rows[2]["volume_ml"] == pytest.approx(1.656)
    assert math.isnan(rows[2]["longest_diameter_mm"])  # no total diameter
    assert rows[0]["enhancing"] == "yes"
    assert "time_intensity_curve" not in rows[0]  # series go to the plot, not the table
    assert node.GetColumnUnitLabel("volume_mm3") == "mm3"
    assert node.GetColumnUnitLabel("volume_ml") == "mL"
    assert node.GetColumnUnitLabel("centroid_ras_y_mm") == "mm"
    assert node.GetTable().GetColumnByName("volume_mm3").IsA("vtkDoubleArray")


def test_refill_replaces_rows_and_rejects_bad_input(ctx):
    node = tables.create_lesion_table(ctx.scene, METRICS)
    one = {"lesions": [dict(METRICS["lesions"][0], volume_mm3=720.0)]}
    tables.fill_lesion_table(node, one, ["Lesion 1"])
    rows = tables.table_to_dicts(node)
    assert len(rows) == 1 and rows[0]["volume_mm3"] == pytest.approx(720.0)
    with pytest.raises(ValueError, match="'lesions' list"):
        tables.fill_lesion_table(node, {"lesion": []})
    with pytest.raises(ValueError, match="1 lesion names for 2"):
        tables.fill_lesion_table(node, METRICS, ["Lesion 1"])
    empty = tables.fill_lesion_table(node, {"lesions": [], "totals": {"volume_mm3": 0.0}})
    assert empty.GetTable().GetNumberOfRows() == 0
