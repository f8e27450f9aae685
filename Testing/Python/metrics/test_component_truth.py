"""Components matched to a reference, and re-scoring of subsets (Dice, detections, false positives)."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.metrics.component_truth import (
    SMALL_LESION_RANGE_MM3,
    is_small_lesion,
    match_components,
    reference_lesions,
    score_subset,
)


def _maps():
    ref = np.zeros((9, 11, 13), np.uint16)
    ref[1:4, 1:4, 1:4] = 1  # 27 voxels, 54 mm3 at 2 mm3/voxel
    ref[6:8, 6:8, 6:8] = 2  # 8 voxels, 16 mm3 (below 20 mm3)
    comp = np.zeros_like(ref)
    comp[2:4, 1:4, 1:4] = 1  # 18 voxels, all inside lesion 1
    comp[6:8, 9:11, 9:12] = 2  # 12 voxels, false positive
    comp[7, 7, 7:10] = 3  # 3 voxels, 1 inside lesion 2
    return comp, ref


def test_match_and_reference_volumes():
    comp, ref = _maps()
    m = match_components(comp, ref)
    assert m[1] == {"n_voxels": 18, "n_overlap": 18, "touches": [1]}
    assert m[2] == {"n_voxels": 12, "n_overlap": 0, "touches": []}
    assert m[3] == {"n_voxels": 3, "n_overlap": 1, "touches": [2]}
    assert reference_lesions(ref, 2.0) == {1: 54.0, 2: 16.0}
    with pytest.raises(InputError, match="share the grid"):
        match_components(comp, ref[:-1])


def test_score_subsets_match_voxel_dice():
    comp, ref = _maps()
    rows = [{"id": k, **v} for k, v in match_components(comp, ref).items()]
    vols = {str(k): v for k, v in reference_lesions(ref, 2.0).items()}  # JSON keys
    everything = score_subset(rows, vols, int(np.count_nonzero(ref)), lambda r: True)
    expected = 2 * np.count_nonzero((comp > 0) & (ref > 0)) / (np.count_nonzero(comp) + np.count_nonzero(ref))
    assert everything["dice"] == pytest.approx(expected)
    assert everything == {**everything, "fp": 1, "n_ref": 1, "n_detected": 1}
    only_first = score_subset(rows, vols, 35, lambda r: r["id"] == 1)
    assert only_first["fp"] == 0 and only_first["n_detected"] == 1
    assert only_first["dice"] == pytest.approx(2 * 18 / (18 + 35))
    nothing = score_subset(rows, vols, 35, lambda r: False)
    assert nothing == {"dice": 0.0, "fp": 0, "n_ref": 1, "n_detected": 0}
    assert score_subset([], {}, 0, lambda r: True)["dice"] is None


@pytest.mark.parametrize("volume_mm3, small", [(19.9, False), (20.0, True), (150.0, True), (299.9, True),
                                               (300.0, False), (2900.0, False)])
def test_small_lesion_range_is_half_open(volume_mm3, small):
    assert SMALL_LESION_RANGE_MM3 == (20.0, 300.0)
    assert is_small_lesion(volume_mm3) is small
