"""Post-processing: numbering by decreasing volume, removal by mm3, breast restriction, resampling back."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.geometry import Geometry
from breastlesionseg.inference.postprocess import (label_instances, min_voxels_for_volume, postprocess_probability,
                                                   resample_array)
from breastlesionseg.inference.preprocess import model_grid


def _blobs_grid():
    geo = Geometry((23, 19, 11), (0.5, 0.5, 2.0), (1.0, 2.0, 3.0))  # voxel = 0.5 mm3
    a = np.zeros(geo.shape_zyx, np.uint8)
    a[1:3, 1:4, 1:4] = 1  # 18 voxels = 9 mm3
    a[5:9, 10:15, 10:15] = 1  # 100 voxels = 50 mm3
    a[2:4, 12:16, 2:5] = 1  # 24 voxels = 12 mm3
    a[8, 1, 20] = 1  # 1 voxel = 0.5 mm3
    a[9, 2, 21] = 1  # touches the previous one diagonally only (26-connected -> one component of 1 mm3)
    return geo, a


def test_instances_numbered_by_decreasing_volume_small_removed_by_mm3():
    geo, a = _blobs_grid()
    labels, volumes = label_instances(a, geo, min_volume_mm3=10.0)
    assert volumes == [50.0, 12.0]
    assert labels.dtype == np.uint16
    assert np.count_nonzero(labels == 1) == 100 and np.all(labels[5:9, 10:15, 10:15] == 1)
    assert np.count_nonzero(labels == 2) == 24 and np.all(labels[2:4, 12:16, 2:5] == 2)
    assert labels.max() == 2
    # 9 mm3 < 10 mm3 removed; at exactly 9 mm3 it is kept
    labels9, volumes9 = label_instances(a, geo, min_volume_mm3=9.0)
    assert volumes9 == [50.0, 12.0, 9.0]
    # 26-connectivity: the diagonal pair is one 1 mm3 lesion
    _, all_volumes = label_instances(a, geo, min_volume_mm3=0.0)
    assert all_volumes == [50.0, 12.0, 9.0, 1.0]
    # nothing above threshold, or everything removed as too small: no lesion, an all-zero map
    for mask, min_mm3 in ((np.zeros_like(a), 0.0), (a, 1000.0)):
        empty_labels, empty_volumes = label_instances(mask, geo, min_volume_mm3=min_mm3)
        assert empty_volumes == [] and empty_labels.dtype == np.uint16 and not empty_labels.any()


def test_min_voxels_for_volume_is_exact_at_boundaries():
    assert min_voxels_for_volume(10.0, 0.5) == 20
    assert min_voxels_for_volume(10.1, 0.5) == 21
    assert min_voxels_for_volume(0.0, 0.5) == 0


def test_resample_identity_and_physical_consistency():
    geo = Geometry((9, 7, 5), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    a = np.arange(np.prod(geo.shape_zyx), dtype=np.float32).reshape(geo.shape_zyx)
    assert resample_array(a, geo, geo) is a
    # a grid shifted by exactly one voxel along x: values shift by one index
    shifted = Geometry((8, 7, 5), (1.0, 1.0, 1.0), (1.0, 0.0, 0.0))
    out = resample_array(a, geo, shifted)
    np.testing.assert_allclose(out, a[:, :, 1:], atol=1e-4)


def test_postprocess_restricts_to_breast_and_maps_back():
    crop = Geometry((21, 17, 9), (0.7, 0.8, 1.9), (5.0, -3.0, 2.0), (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    target = model_grid(crop, (1.4, 1.6, 1.9))
    prob_model = np.zeros(target.shape_zyx, np.float32)
    prob_model[2:7, 2:8, 2:9] = 1.0
    breast = np.ones(crop.shape_zyx, np.uint8)
    breast[:, :, :10] = 0  # half of the box lies outside the breast
    post = postprocess_probability(prob_model, target, crop, breast, threshold=0.5, min_volume_mm3=0.0)
    assert post.lesion_labels_crop.shape == crop.shape_zyx
    assert post.removed_outside_breast_voxels > 0
    assert not np.any(post.lesion_labels_crop[:, :, :10])
    unrestricted = postprocess_probability(prob_model, target, crop, None, threshold=0.5, min_volume_mm3=0.0)
    inside = unrestricted.lesion_labels_crop > 0
    assert np.count_nonzero(inside) == np.count_nonzero(post.lesion_labels_crop) + post.removed_outside_breast_voxels
    # the box maps back to about its physical volume (7*6*5 model voxels of 1.4*1.6*1.9 mm)
    vol = np.count_nonzero(inside) * crop.voxel_volume_mm3
    assert vol == pytest.approx(5 * 6 * 7 * 1.4 * 1.6 * 1.9, rel=0.2)
    with pytest.raises(InputError, match="threshold"):
        postprocess_probability(prob_model, target, crop, None, threshold=1.0, min_volume_mm3=0.0)
