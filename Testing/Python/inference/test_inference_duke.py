"""The shipped demo model on the real Duke exam: the expert lesion box holds the largest lesion's centroid and
nothing is segmented in the heart (slow, real data; skipped without ../shared/data or the shipped model).

History: with the first breast-region version the largest component (6.2 mL) lay in the inferior
slices behind the chest wall (liver / heart box), where the region reached posteriorly; the chest-wall
descent limit in breastlesionseg.breast fixed the region and both checks pass.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from breastlesionseg.exam import load_exam, resample_to_grid
from breastlesionseg.inference import InferenceConfig, SegmentationEngine
from breastlesionseg.io import read_label_volume

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "models" / "mm3dunet-phantom-demo"
#: The Duke exam's heart in LPS mm (min corner, max corner), read off the post1 - pre subtraction by eye:
#: voxel columns i 150-330, rows j >= 265 (about 10 mm behind the sternum), all slices. The same box is
#: used by benchmarks/bench_segment.py.
DUKE_HEART_BOX_LPS_MM = ((-60.0, 47.0, -117.0), (80.0, 180.0, 60.0))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.realdata,
    pytest.mark.skipif(not (SHIPPED / "model_card.json").is_file(), reason="shipped demo model not in models/ yet"),
]


@pytest.fixture(scope="module")
def duke_result(duke_dir, duke_phase_paths):
    exam = load_exam(duke_phase_paths)
    result = SegmentationEngine(InferenceConfig(model=str(SHIPPED), device="cpu")).run(exam)
    box = read_label_volume(duke_dir / "Breast_MRI_153_lesion_bbox.nii.gz")
    if not box.geometry.same_grid(exam.geometry):
        box = resample_to_grid(box, exam.geometry, "nearest")
    return exam, result, np.asarray(box.array) > 0


def test_expert_box_contains_the_largest_lesion_centroid(duke_result):
    exam, result, box = duke_result
    assert result.n_lesions >= 1
    idx = np.round(np.argwhere(result.lesion_labels.array == 1).mean(axis=0)).astype(int)
    assert box[tuple(idx)], (idx, result.lesion_volumes_mm3[:3])


def test_nothing_segmented_in_the_heart(duke_result):
    exam, result, _ = duke_result
    zz, yy, xx = np.nonzero(result.lesion_labels.array)
    lps = exam.geometry.index_to_lps(np.stack([xx, yy, zz], axis=1).astype(float))
    lo, hi = (np.asarray(c) for c in DUKE_HEART_BOX_LPS_MM)
    in_heart = np.all((lps >= lo) & (lps <= hi), axis=1)
    assert int(in_heart.sum()) == 0
