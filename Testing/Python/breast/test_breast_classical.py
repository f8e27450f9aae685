"""Classical breast-region helpers: the block-mean reduction matches SimpleITK BinShrink."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.bool_])
def test_block_mean_matches_sitk_binshrink_on_an_oblique_odd_grid(monkeypatch, dtype):
    import sys

    import SimpleITK as sitk

    from breastlesionseg.breast.classical import block_mean_image
    from breastlesionseg.geometry import Geometry

    rng = np.random.default_rng(3)
    c, s = np.cos(0.3), np.sin(0.3)
    direction = (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)
    geom = Geometry((23, 17, 11), (0.7, 0.8, 1.3), (-40.0, 12.5, 3.0), direction)
    array = (rng.normal(300, 120, geom.shape_zyx) > 300) if dtype is np.bool_ else rng.normal(300, 120, geom.shape_zyx).astype(dtype)
    factors = (3, 2, 2)  # none divides its axis
    fast = block_mean_image(array, geom, factors)  # torch is loaded in the test process
    monkeypatch.delitem(sys.modules, "torch")
    reference = block_mean_image(array, geom, factors)  # the SimpleITK path
    ref_direct = sitk.Cast(sitk.BinShrink(geom.apply_to(sitk.GetImageFromArray(
        np.ascontiguousarray(array.astype(np.float32) if dtype is np.bool_ else array))), list(factors)), sitk.sitkFloat32)
    for img in (fast, reference):
        assert img.GetSize() == ref_direct.GetSize() == (7, 8, 5)
        np.testing.assert_allclose(img.GetOrigin(), ref_direct.GetOrigin(), atol=1e-9)
        np.testing.assert_allclose(img.GetSpacing(), ref_direct.GetSpacing(), atol=1e-12)
        np.testing.assert_allclose(img.GetDirection(), ref_direct.GetDirection(), atol=1e-12)
    got, want = sitk.GetArrayFromImage(fast), sitk.GetArrayFromImage(ref_direct)
    # float: identical means; integers: BinShrink rounds to the pixel type, the fast path does not
    np.testing.assert_allclose(got, want, atol=0.5 if dtype is np.int16 else 1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(reference), want)
