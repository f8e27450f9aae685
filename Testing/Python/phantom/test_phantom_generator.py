"""Phantom ground truth: determinism, lesion table, breast sides, kinetics, heart, difficulty, grids."""
from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from breastlesionseg.labels import BREAST_LEFT, BREAST_RIGHT
from breastlesionseg.phantom import PhantomConfig, classify_curve, generate_phantom
from breastlesionseg.phantom.anatomy import BLOOD, FAT, GLAND, MYOCARDIUM

SMALL = (112, 64, 32)


def _voxel_lps(volume, mask):
    idx = np.argwhere(mask)[:, ::-1].astype(float)  # (k, j, i) -> (i, j, k)
    return volume.geometry.index_to_lps(idx)


def test_same_seed_identical_different_seed_different():
    a = generate_phantom(PhantomConfig(seed=11, size=SMALL, n_lesions=(1, 2)))
    b = generate_phantom(PhantomConfig(seed=11, size=SMALL, n_lesions=(1, 2)))
    c = generate_phantom(PhantomConfig(seed=12, size=SMALL, n_lesions=(1, 2)))
    for pa, pb in zip(a.exam.phases, b.exam.phases):
        assert np.array_equal(pa.array, pb.array)
    assert np.array_equal(a.breast_mask.array, b.breast_mask.array)
    assert np.array_equal(a.lesion_labels.array, b.lesion_labels.array)
    assert a.lesions == b.lesions
    assert not np.array_equal(a.exam.pre.array, c.exam.pre.array)
    assert not np.array_equal(a.breast_mask.array, c.breast_mask.array)


def test_exam_structure_and_types(small_phantoms):
    p = small_phantoms[0]
    assert p.exam.names == ["pre", "post1", "post2", "post3", "post4"]
    assert p.exam.acquisition_times_s == [0.0, 90.0, 180.0, 270.0, 360.0]
    assert p.exam.pre.array.dtype == np.uint16 and p.exam.pre.array.shape == (32, 64, 112)
    assert p.breast_mask.array.dtype == np.uint8 and set(np.unique(p.breast_mask.array)) == {0, 1, 2}
    assert p.lesion_labels.array.dtype == np.uint16
    assert p.breast_mask.geometry.same_grid(p.exam.geometry)
    assert p.lesion_labels.geometry.same_grid(p.exam.geometry)
    # realistic uint16-like scanner values: fat ~180, gland ~420, enhancing structures up to ~1000s
    pre = p.exam.pre.array
    assert 300 < np.percentile(pre[p.tissue.array == GLAND], 90) < 700
    assert 100 < np.median(pre[p.tissue.array == FAT]) < 300


def test_lesion_table_matches_label_voxels(small_phantoms):
    seen = 0
    for p in small_phantoms.values():
        lab = p.lesion_labels.array
        vv = p.lesion_labels.geometry.voxel_volume_mm3
        assert int(lab.max()) == len(p.lesions)
        counts = np.bincount(lab.ravel(), minlength=len(p.lesions) + 1)[1:]
        # numbered 1..N by decreasing volume
        assert list(counts) == sorted(counts, reverse=True)
        for les, n in zip(p.lesions, counts):
            seen += 1
            assert les["n_voxels"] == n
            assert les["volume_mm3"] == pytest.approx(n * vv)
            assert les["volume_ml"] == pytest.approx(n * vv / 1000.0)
            assert les["diameter_mm"] == pytest.approx((6 * n * vv / np.pi) ** (1 / 3))
            assert 3.0 <= les["diameter_mm"] <= 30.0
            assert les["kind"] in ("mass", "non-mass") and les["kinetics"] in ("persistent", "plateau", "washout")
            assert les["peak_enhancement_percent"] >= les["early_enhancement_percent"] >= 70.0
            cen = _voxel_lps(p.lesion_labels, lab == les["index"]).mean(axis=0)
            assert np.allclose(cen, les["centroid_lps_mm"], atol=1e-3)
    assert seen >= 6


def test_lesions_inside_breast_not_in_skin_and_disjoint(small_phantoms):
    for p in small_phantoms.values():
        lab = p.lesion_labels.array
        assert np.all(p.breast_mask.array[lab > 0] > 0)
        assert set(np.unique(p.tissue.array[lab > 0])) <= {FAT, GLAND}
        for les in p.lesions:
            sides = np.unique(p.breast_mask.array[lab == les["index"]])
            assert len(sides) == 1  # a lesion never straddles the midline


def _check_sides(p):
    bm = p.breast_mask.array
    left = _voxel_lps(p.breast_mask, bm == BREAST_LEFT)
    right = _voxel_lps(p.breast_mask, bm == BREAST_RIGHT)
    assert left[:, 0].min() > 0 and right[:, 0].max() <= 0  # patient's left = +x in LPS
    for les in p.lesions:
        x = les["centroid_lps_mm"][0]
        assert (les["side"] == "left") == (x > 0)
        assert les["breast_label"] == (BREAST_LEFT if les["side"] == "left" else BREAST_RIGHT)


def test_left_right_on_the_physical_side(small_phantoms):
    _check_sides(small_phantoms[1])


def test_left_right_on_the_physical_side_oblique():
    p = generate_phantom(PhantomConfig(seed=1, size=(120, 72, 32), spacing=(3.0, 3.0, 4.0), oblique_deg=25.0,
                                       n_lesions=(2, 3)))
    assert not np.allclose(p.exam.geometry.direction_matrix, np.eye(3))
    assert len(p.lesions) >= 2
    _check_sides(p)


def test_kinetic_type_recovered_from_the_lesion_mean_curve():
    kinds = set()
    for seed in range(8):
        p = generate_phantom(PhantomConfig(seed=seed, size=SMALL, n_lesions=(2, 3), noise_percent=3.0))
        stack = p.exam.stack()
        for les in p.lesions:
            m = p.lesion_labels.array == les["index"]
            if m.sum() < 4:
                continue  # a 1-3 voxel lesion on 3x4 mm voxels is mostly partial volume
            curve = stack[:, m].mean(axis=1)
            assert classify_curve(curve) == les["kinetics"], (seed, les)
            kinds.add(les["kinetics"])
    assert kinds == {"persistent", "plateau", "washout"}


def test_classify_curve_thresholds():
    assert classify_curve([100, 200, 230]) == "persistent"
    assert classify_curve([100, 200, 205]) == "plateau"
    assert classify_curve([100, 200, 170]) == "washout"


def test_heart_enhances_strongly_and_lies_outside_the_breast_mask(small_phantoms):
    p = small_phantoms[2]
    tissue = p.tissue.array
    heart = (tissue == BLOOD) | (tissue == MYOCARDIUM)
    assert heart.sum() > 1000
    assert not np.any(p.breast_mask.array[heart])
    heart_lps = _voxel_lps(p.tissue, heart)
    breast_lps = _voxel_lps(p.breast_mask, p.breast_mask.array > 0)
    assert heart_lps[:, 1].mean() > breast_lps[:, 1].mean() + 40  # posterior to the breasts
    pre = p.exam.pre.array.astype(float)
    post1 = p.exam.phases[1].array.astype(float)
    blood = tissue == BLOOD
    pe_blood = (post1[blood].mean() - pre[blood].mean()) / pre[blood].mean() * 100
    assert pe_blood > 180.0
    lab = p.lesion_labels.array
    pe_lesions = (post1[lab > 0].mean() - pre[lab > 0].mean()) / pre[lab > 0].mean() * 100
    assert pe_blood > pe_lesions  # the heart out-enhances the lesions: a false-positive trap


def _dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


def test_trivial_subtraction_threshold_does_not_solve_the_phantom(small_phantoms):
    for seed in (0, 3):
        p = small_phantoms[seed]
        sub = p.exam.phases[1].array.astype(float) - p.exam.pre.array.astype(float)
        truth = p.lesion_labels.array > 0
        lesion_med = np.median(sub[truth])
        thresholds = [np.percentile(sub, q) for q in (95, 98, 99, 99.5, 99.8)] + [0.5 * lesion_med, lesion_med]
        dices = [_dice(sub > t, truth) for t in thresholds]
        assert max(dices) < 0.5, (seed, dices)


def _breast_volumes(config):
    return generate_phantom(config).breast_volumes_ml


def test_anisotropic_and_oblique_grids_sample_the_same_breasts():
    ref = _breast_volumes(PhantomConfig(seed=4, n_lesions=(0, 0)))  # the default grid
    aniso = _breast_volumes(PhantomConfig(seed=4, size=(224, 80, 32), spacing=(1.5, 2.4, 4.0), n_lesions=(0, 0)))
    obl = _breast_volumes(PhantomConfig(seed=4, size=(184, 112, 64), spacing=(2.0, 2.0, 2.0), oblique_deg=12.0,
                                        n_lesions=(0, 0)))
    for side in ("left", "right"):
        assert ref[side] > 200.0
        assert aniso[side] == pytest.approx(ref[side], rel=0.01)
        assert obl[side] == pytest.approx(ref[side], rel=0.01)


def test_lesions_are_the_same_physical_objects_on_another_grid():
    a = generate_phantom(PhantomConfig(seed=6, size=(168, 96, 64), spacing=(2.0, 2.0, 2.0), n_lesions=(2, 2)))
    b = generate_phantom(PhantomConfig(seed=6, size=(224, 128, 43), spacing=(1.5, 1.5, 3.0), n_lesions=(2, 2)))
    assert len(a.lesions) == len(b.lesions) == 2
    for la, lb in zip(a.lesions, b.lesions):
        assert la["kind"] == lb["kind"] and la["kinetics"] == lb["kinetics"]
        assert np.allclose(la["centroid_lps_mm"], lb["centroid_lps_mm"], atol=1.5)
        assert lb["volume_mm3"] == pytest.approx(la["volume_mm3"], rel=0.15)


def test_default_generation_time_is_logged(caplog):
    caplog.set_level(logging.INFO, logger="breastlesionseg.phantom")
    t0 = time.perf_counter()
    p = generate_phantom(PhantomConfig(seed=2))
    elapsed = time.perf_counter() - t0
    assert any("generated in" in r.getMessage() for r in caplog.records)
    assert p.generation_time_s == pytest.approx(elapsed, abs=0.5)
    # the generation time itself is measured in benchmarks/bench_segment.py ("generate_phantom"), not asserted here
