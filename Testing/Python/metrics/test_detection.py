"""Lesion-wise TP / FP / FN by volume bin on constructed cases."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.metrics import lesion_detection, volume_bin
from breastlesionseg.metrics._inputs import instance_labels

# voxel volume 1 mm3: lesion volumes in mm3 equal voxel counts
VOXEL_MM3 = 1.0
SIZES = {"lt10": (2, 2, 2), "10to20": (2, 2, 3), "gt20": (3, 3, 3)}  # 8, 12, 27 voxels


def _put(arr: np.ndarray, corner, size, value=1) -> None:
    z, y, x = corner
    dz, dy, dx = size
    arr[z:z + dz, y:y + dy, x:x + dx] = value


def _case():
    """Per bin: one detected reference lesion (TP), one missed (FN), one predicted lesion elsewhere (FP)."""
    ref = np.zeros((9, 25, 31), np.uint8)
    pred = np.zeros_like(ref)
    for row, (name, size) in enumerate(SIZES.items()):
        y = 1 + 8 * row
        _put(ref, (1, y, 1), size)  # TP: predicted with a partial overlap
        _put(pred, (1, y + 1, 2), size)
        _put(ref, (1, y, 11), size)  # FN
        _put(pred, (1, y, 21), size)  # FP
    return pred, ref


def test_one_tp_fp_fn_per_volume_bin():
    pred, ref = _case()
    d = lesion_detection(instance_labels(pred), instance_labels(ref), VOXEL_MM3)
    assert d["counts"] == {"tp": 3, "fp": 3, "fn": 3}
    for name in SIZES:
        assert d["counts_by_volume_mm3"][name] == {"tp": 1, "fp": 1, "fn": 1}
    assert d["sensitivity"] == pytest.approx(0.5)
    detected = [r for r in d["reference_lesions"] if r["detected"]]
    assert sorted(r["volume_mm3"] for r in detected) == [8.0, 12.0, 27.0]
    assert all(0 < r["best_iou"] < 1 for r in detected)
    # the 3x3x3 pair shifted by one voxel in y and x overlaps 3 * 2 * 2 = 12 voxels: IoU 12 / 42
    big = next(r for r in detected if r["volume_mm3"] == 27.0)
    assert big["best_iou"] == pytest.approx(12 / 42)
    assert big["best_dice"] == pytest.approx(24 / 54)


def test_min_volume_and_min_iou():
    pred, ref = _case()
    d = lesion_detection(instance_labels(pred), instance_labels(ref), VOXEL_MM3, min_lesion_volume_mm3=10)
    assert d["counts_by_volume_mm3"]["lt10"] == {"tp": 0, "fp": 0, "fn": 0}
    assert d["counts"] == {"tp": 2, "fp": 2, "fn": 2}
    # IoUs of the shifted pairs: 2/14, 4/20, 12/42, all < 0.3 -> with min_iou 0.3 every pair becomes FN + FP
    d = lesion_detection(instance_labels(pred), instance_labels(ref), VOXEL_MM3, min_iou=0.3)
    assert d["counts"] == {"tp": 0, "fp": 6, "fn": 6}


def test_instance_labels_kept_and_components_split():
    a = np.zeros((5, 5, 9), np.uint8)
    a[1:3, 1:3, 1:3] = 1
    a[1:3, 1:3, 5:8] = 1  # bigger component -> label 1
    inst = instance_labels(a)
    assert inst[1, 1, 5] == 1 and inst[1, 1, 1] == 2
    b = a.astype(np.int32)
    b[1:3, 1:3, 5:8] = 7  # already instance labels: kept as they are
    assert np.array_equal(instance_labels(b), b)


def test_one_prediction_covering_two_reference_lesions():
    ref = np.zeros((3, 3, 9), np.int32)
    ref[1, 1, 1:3] = 1
    ref[1, 1, 5:7] = 2
    pred = np.zeros_like(ref)
    pred[1, 1, 0:8] = 1
    d = lesion_detection(pred, ref, 5.0)
    assert d["counts"] == {"tp": 2, "fp": 0, "fn": 0}
    assert d["predicted_lesions"][0]["matched_reference_labels"] == [1, 2]


@pytest.mark.parametrize("v, b", [(0.5, "lt10"), (9.99, "lt10"), (10.0, "10to20"), (20.0, "10to20"), (20.01, "gt20")])
def test_volume_bins(v, b):
    assert volume_bin(v) == b


def test_large_label_values_use_the_sorting_path():
    ref = np.zeros((3, 4, 9), np.int32)
    ref[1, 1:3, 1:4] = 2000
    ref[1, 1:3, 6:8] = 7
    pred = np.zeros_like(ref)
    pred[1, 1:3, 2:5] = 3000  # 4 shared voxels with reference 2000; (3001 * 2001) pairs -> np.unique path
    d = lesion_detection(pred, ref, 1.0)
    assert d["counts"] == {"tp": 1, "fp": 0, "fn": 1}
    hit = next(r for r in d["reference_lesions"] if r["reference_label"] == 2000)
    assert hit["matched_prediction_labels"] == [3000] and hit["best_iou"] == pytest.approx(4 / 8)
