"""lesion_metrics on a synthetic exam: per-lesion shape + kinetics, totals, breast volumes, input errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from breastlesionseg.errors import GeometryError, InputError
from breastlesionseg.exam import DCEExam
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.metrics import breast_volumes, format_lesion_table, lesion_metrics, lesion_rows


def _exam(g: Geometry, labels: np.ndarray, curves: dict[int, tuple[float, ...]], background=100.0) -> DCEExam:
    """Phases whose voxels in lesion ``l`` follow ``curves[l]`` (one value per phase)."""
    n = len(next(iter(curves.values())))
    phases = []
    for k in range(n):
        arr = np.full(g.shape_zyx, background, np.float32)
        for label, curve in curves.items():
            arr[labels == label] = curve[k]
        phases.append(Volume(arr, g, name=f"phase{k}", source=f"phase{k}.nii.gz"))
    return DCEExam(phases, acquisition_times_s=[0.0, 90.0, 180.0, 270.0][:n])


@pytest.fixture
def case(oblique_grid):
    g = oblique_grid
    labels = np.zeros(g.shape_zyx, np.int32)
    labels[2:6, 2:7, 2:8] = 1  # 120 voxels, persistent
    labels[8:11, 10:14, 12:16] = 2  # 48 voxels, washout
    labels[12:14, 14:16, 3:5] = 4  # 8 voxels, plateau, label gap (3 deleted in Slicer)
    curves = {1: (100.0, 150.0, 170.0, 190.0), 2: (100.0, 250.0, 230.0, 200.0), 4: (100.0, 180.0, 185.0, 182.0)}
    breast = np.zeros(g.shape_zyx, np.uint8)
    breast[:, :, 11:] = 1
    breast[:, :, :10] = 2
    return g, labels, _exam(g, labels, curves), breast


def test_lesion_metrics_values(case):
    g, labels, exam, breast = case
    m = lesion_metrics(exam, Volume(labels, g), Volume(breast, g))
    json.dumps(m, allow_nan=False)  # strict JSON
    les = {l["label"]: l for l in m["lesions"]}
    assert sorted(les) == [1, 2, 4]
    assert [les[k]["name"] for k in (1, 2, 4)] == ["Lesion 1", "Lesion 2", "Lesion 4"]
    vox = g.voxel_volume_mm3
    assert les[1]["volume_mm3"] == pytest.approx(120 * vox)
    assert les[2]["volume_ml"] == pytest.approx(48 * vox / 1000)
    assert [les[k]["kinetic_curve_type"] for k in (1, 2, 4)] == ["persistent", "washout", "plateau"]
    assert les[1]["mean_pe_early_percent"] == pytest.approx(50.0)
    assert les[2]["peak_pe_early_percent"] == pytest.approx(150.0)
    assert les[2]["ser_of_mean_curve"] == pytest.approx(150.0 / 100.0)
    # FTV (PE >= 70 %): lesion 1 enhances only 50 % -> 0; lesions 2 and 4 fully
    assert les[1]["ftv_mm3"] == 0.0
    assert les[2]["ftv_mm3"] == pytest.approx(48 * vox)
    assert les[4]["ftv_mm3"] == pytest.approx(8 * vox)
    assert les[1]["time_intensity_curve"][3]["time_s"] == 270.0
    assert [c["mean_signal"] for c in les[2]["time_intensity_curve"]] == pytest.approx([100, 250, 230, 200])
    # sides from the breast mask: lesion 1 (x index 2..7) in label 2 = right, lesion 2 (12..15) left
    assert (les[1]["side"], les[2]["side"]) == ("right", "left")
    t = m["totals"]
    assert t["lesion_count"] == 3
    assert t["total_volume_mm3"] == pytest.approx(176 * vox)
    assert t["total_ftv_ml"] == pytest.approx(56 * vox / 1000)
    bv = m["breast_volumes"]
    assert bv["left_ml"] == pytest.approx(np.count_nonzero(breast == 1) * vox / 1000)
    assert bv["right_ml"] == pytest.approx(np.count_nonzero(breast == 2) * vox / 1000)
    assert bv["total_ml"] == pytest.approx(bv["left_ml"] + bv["right_ml"])
    # lower threshold: lesion 1 now counts
    m40 = lesion_metrics(exam, labels, pe_threshold_percent=40)
    assert m40["lesions"][0]["ftv_voxel_count"] == 120
    assert m40["breast_volumes"] is None
    rows = lesion_rows(m)
    assert rows[0]["centroid_R_ras_mm"] == pytest.approx(-les[1]["centroid_lps_mm"][0])
    assert "Lesion 4" in format_lesion_table(m)


def test_empty_lesion_map(case):
    g, labels, exam, _ = case
    m = lesion_metrics(exam, np.zeros_like(labels))
    assert m["lesions"] == [] and m["totals"]["lesion_count"] == 0 and m["totals"]["total_ftv_mm3"] == 0.0


def test_input_errors(case):
    g, labels, exam, breast = case
    with pytest.raises(InputError, match="lesion_labels: array shape"):
        lesion_metrics(exam, labels[:, :, :-1])
    other = Geometry(g.size, g.spacing, (0.0, 0.0, 0.0), g.direction)
    with pytest.raises(GeometryError, match="lesion_labels 'moved.nii.gz' is not on the exam grid"):
        lesion_metrics(exam, Volume(labels, other, source="moved.nii.gz"))
    with pytest.raises(InputError, match="must be integers"):
        lesion_metrics(exam, labels * 0.5)
    with pytest.raises(InputError, match=">= 0"):
        lesion_metrics(exam, -labels)
    with pytest.raises(InputError, match="early_phase=4"):
        lesion_metrics(exam, labels, early_phase=4)
    with pytest.raises(InputError, match="breast_mask: labels must be 0, 1"):
        breast_volumes(Volume(breast * 2, g))
