"""build_channels: named channels, z-score inside a mask, subtraction, errors."""
from __future__ import annotations

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.exam import DCEExam
from breastlesionseg.geometry import Geometry, Volume
from breastlesionseg.nn.channels import build_channels, parse_channel_name, required_phases

SHAPE = (5, 7, 9)


def _phases(n: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(100 + 50 * k, 10 + 5 * k, SHAPE).astype(np.float32) for k in range(n)]


def test_zscore_inside_mask_and_values():
    phases = _phases()
    mask = np.zeros(SHAPE, np.uint8)
    mask[1:4, 2:6, 3:8] = 2
    out = build_channels(phases, ["pre", "post2", "sub1"], mask=mask)
    assert out.shape == (3,) + SHAPE and out.dtype == np.float32
    inside = out[:, mask > 0]
    np.testing.assert_allclose(inside.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(inside.std(axis=1), 1, atol=1e-5)
    # the values are the affine z-score of the source inside the mask statistics
    sub = phases[1].astype(np.float64) - phases[0]
    expected = (sub - sub[mask > 0].mean()) / sub[mask > 0].std()
    np.testing.assert_allclose(out[2], expected, rtol=1e-5, atol=1e-5)


def test_no_normalisation_gives_raw_values_and_subtraction():
    phases = _phases()
    out = build_channels(phases, ["post1", "sub2", "pre"], normalization="none")
    np.testing.assert_allclose(out[0], phases[1])
    np.testing.assert_allclose(out[1], phases[2] - phases[0], rtol=1e-6)
    np.testing.assert_allclose(out[2], phases[0])


def test_robust_is_median_and_mad_inside_the_mask():
    phases = _phases()
    mask = np.zeros(SHAPE, np.uint8)
    mask[1:4, 2:6, 3:8] = 1
    out = build_channels(phases, ["pre", "sub2"], normalization="robust", mask=mask)
    sub = (phases[2] - phases[0]).astype(np.float32)
    values = sub[mask > 0]
    median = np.median(values)
    mad_sd = 1.4826 * np.median(np.abs(values - median))
    np.testing.assert_allclose(out[1], (sub - median) / mad_sd, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.median(out[:, mask > 0], axis=1), 0, atol=1e-5)


def test_robust_scale_ignores_a_bright_minority_that_changes_the_zscore():
    """A subtraction with bright edges in 5 % of the breast (fat moved without fat suppression): a lesion keeps its
    robust value, while its z-score falls because the SD grows."""
    rng = np.random.default_rng(3)
    pre = rng.normal(100, 1, (11, 13, 17)).astype(np.float32)
    post = pre + rng.normal(0, 10, pre.shape).astype(np.float32)
    post[5, 6, 8] += 50.0  # the lesion: 5 SD of the subtraction noise
    edged = post.copy()
    edges = rng.random(pre.shape) < 0.05
    edged[edges] += 200.0
    edged[5, 6, 8] = post[5, 6, 8]
    clean_robust, edged_robust = (build_channels([pre, p], ["sub1"], normalization="robust")[0, 5, 6, 8]
                                  for p in (post, edged))
    clean_z, edged_z = (build_channels([pre, p], ["sub1"])[0, 5, 6, 8] for p in (post, edged))
    assert edged_robust == pytest.approx(clean_robust, rel=0.15)
    assert edged_z < 0.5 * clean_z


def test_robust_falls_back_to_the_sd_when_most_values_are_equal():
    pre = np.zeros(SHAPE, np.float32)
    post = pre.copy()
    post[0, :3, :] = 4.0  # 27 of 315 voxels differ: MAD 0
    out = build_channels([pre, post], ["sub1"], normalization="robust")[0]
    assert np.isfinite(out).all()
    sd = post.std()
    assert out[0, 0, 0] == pytest.approx(4.0 / sd, rel=1e-5) and out[2, 2, 2] == 0.0


def test_whole_volume_without_mask_and_constant_channel():
    pre = np.full(SHAPE, 7.0, np.float32)
    post = pre.copy()  # sub1 is all zero: std 0 must not divide by ~0
    out = build_channels([pre, post], ["pre", "sub1", "post1"])
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, 0.0)
    out = build_channels(_phases(2), ["post1"])
    assert abs(out.mean()) < 1e-5 and abs(out.std() - 1) < 1e-5


def test_accepts_dce_exam_and_volumes():
    phases = _phases(3)
    geom = Geometry(size=(SHAPE[2], SHAPE[1], SHAPE[0]), spacing=(0.7, 0.7, 1.5), origin=(0.0, 0.0, 0.0))
    vols = [Volume(a, geom, name=n) for a, n in zip(phases, ["pre", "post1", "post2"])]
    exam = DCEExam(vols)
    a = build_channels(exam, ["pre", "post1", "sub1"])
    b = build_channels(phases, ["pre", "post1", "sub1"])
    c = build_channels(vols, ["pre", "post1", "sub1"], mask=Volume(np.ones(SHAPE, np.uint8), geom))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, atol=1e-6)


def test_errors_are_clear():
    phases = _phases(3)  # pre + 2 posts
    with pytest.raises(InputError, match="post3.*only 2 post-contrast"):
        build_channels(phases, ["pre", "post3"])
    with pytest.raises(InputError, match="sub3"):
        build_channels(phases, ["sub3"])
    with pytest.raises(InputError, match="unknown input channel name 'flair'"):
        build_channels(phases, ["pre", "flair"])
    with pytest.raises(InputError, match="normalization"):
        build_channels(phases, ["pre"], normalization="minmax")
    with pytest.raises(InputError, match="mask is empty"):
        build_channels(phases, ["pre"], mask=np.zeros(SHAPE))
    with pytest.raises(InputError, match="mask has shape"):
        build_channels(phases, ["pre"], mask=np.ones((5, 7, 8)))
    with pytest.raises(InputError, match="shape"):
        build_channels([phases[0], phases[1][:, :, :-1]], ["sub1"])
    bad = phases[1].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        build_channels([phases[0], bad], ["post1"])
    with pytest.raises(InputError, match="empty"):
        build_channels(phases, [])


def test_name_parsing():
    assert parse_channel_name("pre") == ("pre", 0)
    assert parse_channel_name("post12") == ("post", 12)
    assert parse_channel_name("sub1") == ("sub", 1)
    assert required_phases(["pre", "sub4"]) == 5
    with pytest.raises(InputError):
        parse_channel_name("post0")
