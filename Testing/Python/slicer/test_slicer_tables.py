"""Lesion table node from real lesion_metrics output (real vtkMRMLTableNode)."""
from __future__ import annotations

import math

import pytest

from breastlesionseg.exam import DCEExam
from breastlesionseg.metrics import lesion_metrics
from BreastLesionSegLib import tables


@pytest.fixture
def metrics(synthetic_results):
    vols, breast, lesions = synthetic_results
    return lesion_metrics(DCEExam(vols), lesions, breast)


def test_table_rows_columns_units(ctx, metrics, small_geometry):
    node = tables.create_lesion_table(ctx.scene, metrics, ["Lesion 1", "Lesion 2"])
    rows = tables.table_to_dicts(node)
    voxel_mm3 = small_geometry.voxel_volume_mm3  # 0.8 * 0.9 * 2.0 = 1.44
    assert [r["Segment"] for r in rows] == ["Lesion 1", "Lesion 2", "Total"]
    assert rows[0]["volume_mm3"] == pytest.approx(120 * voxel_mm3)
    assert rows[1]["volume_ml"] == pytest.approx(18 * voxel_mm3 / 1000.0)
    assert rows[2]["volume_mm3"] == pytest.approx(138 * voxel_mm3)  # totals row
    assert math.isnan(rows[2]["longest_3d_diameter_mm"])  # no total diameter
    assert rows[0]["side"] == "left" and rows[1]["side"] == "right"
    # lesions go 100 -> 300 -> 250 (+-1 noise): 200 % early enhancement, -17 % late change = washout
    assert rows[0]["mean_pe_early_percent"] == pytest.approx(200.0, abs=5.0)
    assert rows[0]["kinetic_curve_type"] == "washout"
    assert rows[0]["ftv_mm3"] == pytest.approx(120 * voxel_mm3)
    assert rows[0]["voxel_count"] == 120 and math.isnan(rows[2]["voxel_count"])
    assert "name" not in rows[0] and "time_intensity_curve" not in rows[0]
    assert node.GetColumnUnitLabel("volume_mm3") == "mm3"
    assert node.GetColumnUnitLabel("volume_ml") == "mL"
    assert node.GetColumnUnitLabel("mean_pe_early_percent") == "%"
    assert node.GetTable().GetColumnByName("volume_mm3").IsA("vtkDoubleArray")


def test_refill_replaces_rows_and_rejects_bad_input(ctx, metrics):
    node = tables.create_lesion_table(ctx.scene, metrics)
    one = dict(metrics, lesions=metrics["lesions"][1:])
    tables.fill_lesion_table(node, one, ["Lesion 7"])
    rows = tables.table_to_dicts(node)
    assert [r["Segment"] for r in rows] == ["Lesion 7", "Total"]
    with pytest.raises(ValueError, match="'lesions' list"):
        tables.fill_lesion_table(node, {"lesion": []})
    with pytest.raises(ValueError, match="1 lesion names for 2"):
        tables.fill_lesion_table(node, metrics, ["Lesion 1"])
    empty = tables.fill_lesion_table(node, dict(metrics, lesions=[]))
    assert empty.GetTable().GetNumberOfRows() == 0
