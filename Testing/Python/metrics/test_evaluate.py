"""evaluate_segmentation: combined result, grid checks, JSON-readiness."""
from __future__ import annotations

import json

import numpy as np
import pytest

from breastlesionseg.errors import GeometryError, InputError
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.metrics import evaluate_segmentation


def _maps(g: Geometry):
    ref = np.zeros(g.shape_zyx, np.uint8)
    ref[2:6, 3:9, 4:12] = 1
    ref[9:12, 12:16, 14:18] = 1
    pred = np.zeros_like(ref)
    pred[2:6, 3:9, 5:12] = 1  # lesion 1 slightly smaller
    pred[1:3, 14:17, 1:3] = 1  # a false positive
    return pred, ref


def test_evaluate_values(oblique_grid):
    g = oblique_grid
    pred, ref = _maps(g)
    r = evaluate_segmentation(Volume(pred, g, source="pred.nii.gz"), Volume(ref, g, source="ref.nii.gz"))
    json.dumps(r, allow_nan=False)
    tp = np.count_nonzero(pred & ref)
    assert r["dice"] == pytest.approx(2 * tp / (pred.sum() + ref.sum()))
    assert r["recall"] == pytest.approx(tp / ref.sum())
    assert r["hd95_mm"] > 0 and r["asd_mm"] > 0
    assert r["detection"]["counts"] == {"tp": 1, "fp": 1, "fn": 1}
    assert r["reference_volume_mm3"] == pytest.approx(ref.sum() * g.voxel_volume_mm3)
    assert (r["prediction"], r["reference"]) == ("pred.nii.gz", "ref.nii.gz")
    # the 12-voxel false positive (12 * 0.462 mm3 = 5.5 mm3) disappears with a 10 mm3 minimum
    r10 = evaluate_segmentation(Volume(pred, g), Volume(ref, g), min_lesion_volume_mm3=10)
    assert r10["detection"]["counts"]["fp"] == 0
    assert r10["dice"] == r["dice"]  # voxel metrics use every voxel
    fast = evaluate_segmentation(Volume(pred, g), Volume(ref, g), surface_distances_mm=False)
    assert fast["hd95_mm"] is None and fast["surface_distance_note"] == "not computed" and fast["dice"] == r["dice"]


def test_grid_mismatch_names_both_inputs(oblique_grid):
    g = oblique_grid
    pred, ref = _maps(g)
    shifted = Geometry(g.size, g.spacing, (0.0, 0.0, 0.0), g.direction)
    with pytest.raises(GeometryError, match="prediction 'p.nrrd' and reference 'r.nrrd' are not on the same grid"):
        evaluate_segmentation(Volume(pred, shifted, source="p.nrrd"), Volume(ref, g, source="r.nrrd"))
    with pytest.raises(InputError, match="min_lesion_volume_mm3"):
        evaluate_segmentation(Volume(pred, g), Volume(ref, g), min_lesion_volume_mm3=-1)
    with pytest.raises(InputError, match="must be a breastlesionseg.geometry.Volume"):
        evaluate_segmentation(pred, Volume(ref, g))
