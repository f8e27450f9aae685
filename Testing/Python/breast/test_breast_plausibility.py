"""Implausible breast volumes are flagged (issue 14 row 7: pure noise gave a 41 L "breast" and exit 0)."""
from __future__ import annotations

import numpy as np

from breastlesionseg.breast import segment_breast_region
from breastlesionseg.breast.result import MAX_PLAUSIBLE_BREAST_ML, breast_volume_warnings
from breastlesionseg.geometry import Geometry, Volume


def test_volumes_beyond_any_breast_are_warned():
    assert breast_volume_warnings({"left": 650.0, "right": 700.0, "total": 1350.0}) == []
    texts = breast_volume_warnings({"left": 41000.0, "right": 20.0}, "noise.nii.gz")
    assert len(texts) == 1 and "implausible left breast volume 41000 mL in 'noise.nii.gz'" in texts[0]


def test_a_large_noise_volume_gets_the_warning_in_the_result():
    # 4 mm voxels over a 1 m cube of noise: whatever the method calls "breast" is far beyond any real one
    geo = Geometry((61, 59, 57), (16.0, 16.0, 16.0), (0.0, 0.0, 0.0))
    noise = np.random.default_rng(7).normal(100.0, 30.0, geo.shape_zyx).astype(np.float32)
    result = segment_breast_region(Volume(noise, geo, name="noise", source="noise.nii.gz"))
    big = [side for side in ("left", "right") if result.volumes_ml[side] > MAX_PLAUSIBLE_BREAST_ML]
    assert big and len(result.warnings) == len(big)
    assert result.to_dict()["warnings"] == result.warnings
