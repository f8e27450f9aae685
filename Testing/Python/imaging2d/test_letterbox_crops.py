"""Letterbox geometry and its inverse; lesion-containing and lesion-free crops; intensity scaling."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.imaging2d.intensity import scale_to_unit
from breastlesionseg.imaging2d.lesion_crops import lesion_bbox, lesion_free_regions, random_lesion_crop, random_subcrop
from breastlesionseg.imaging2d.letterbox import Letterbox


@pytest.mark.parametrize("shape", [(256, 199), (97, 256), (64, 64)])
def test_letterbox_keeps_aspect_and_inverts_to_the_exact_size(shape):
    box = Letterbox.fit(*shape, 128)
    assert max(box.inner_height_px, box.inner_width_px) == 128
    assert box.inner_height_px / box.inner_width_px == pytest.approx(shape[0] / shape[1], rel=0.02)
    disk = np.zeros(shape, dtype=np.float32)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    disk[(yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 < (min(shape) / 4) ** 2] = 1
    square = box.apply(disk)[0]
    assert square.shape == (128, 128)
    assert float(square[~box.content_mask()].abs().sum()) == 0.0  # padding stays zero
    back = box.invert(square) > 0.5
    assert back.shape == shape
    dice = 2 * (back & (disk > 0)).sum() / (back.sum() + disk.sum())
    assert dice > 0.97


def test_lesion_free_regions_do_not_touch_the_lesion():
    mask = np.zeros((200, 160), dtype=bool)
    mask[80:120, 60:100] = True
    bbox = lesion_bbox(mask)
    assert bbox == (80, 60, 120, 100)
    regions = lesion_free_regions(mask.shape, bbox, margin_fraction=0.05, min_side_px=30)
    assert regions, "a 200 x 160 image with a central 40 px lesion has free strips"
    rng = np.random.default_rng(0)
    for region in regions:
        for _ in range(20):
            top, left, bottom, right = random_subcrop(region, rng, min_side_px=30)
            assert not mask[top:bottom, left:right].any()
            assert bottom - top >= 12 and right - left >= 12
    assert lesion_bbox(np.zeros((5, 5), bool)) is None


def test_random_lesion_crops_contain_the_whole_lesion():
    bbox = (50, 40, 90, 70)
    rng = np.random.default_rng(1)
    for _ in range(50):
        top, left, bottom, right = random_lesion_crop((120, 100), bbox, rng, full_image_probability=0.3)
        assert top <= 50 and left <= 40 and bottom >= 90 and right >= 70
        assert bottom <= 120 and right <= 100


def test_scale_to_unit_is_gain_invariant():
    pixels = np.random.default_rng(2).random((31, 17)) * 100
    np.testing.assert_allclose(scale_to_unit(pixels), scale_to_unit(3 * pixels + 7), atol=1e-5)
    assert scale_to_unit(np.full((9, 9), 4.0)).max() == 0.0
