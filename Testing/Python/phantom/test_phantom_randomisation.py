"""Domain randomisation: distractors (vessel trees, nodes, skin folds), motion, slice thickness, families."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.phantom import PhantomConfig, generate_phantom
from breastlesionseg.phantom.randomisation import FAMILIES, TRAINING, draw_config

SMALL = dict(size=(75, 43, 21), spacing=(4.5, 4.5, 6.1), dtype="float32", noise_percent=0.0)


@pytest.fixture(scope="module")
def plain_and_distracted():
    plain = generate_phantom(PhantomConfig(seed=11, **SMALL))
    busy = generate_phantom(PhantomConfig(seed=11, vessel_trees=3, arterial_fraction=1.0, axillary_nodes=2,
                                          skin_folds=2, **SMALL))
    return plain, busy


def test_distractors_are_not_lesions_and_leave_the_truth_alone(plain_and_distracted):
    plain, busy = plain_and_distracted
    assert np.array_equal(plain.lesion_labels.array, busy.lesion_labels.array)
    assert np.array_equal(plain.breast_mask.array, busy.breast_mask.array)
    desc = busy.anatomy["distractors"]
    assert len(desc["vessel_trees"]) == 6 and all(t["kind"] == "arterial" for t in desc["vessel_trees"])
    assert len(desc["axillary_nodes"]) == 4 and len(desc["skin_folds"]) == 4


def test_arterial_trees_enhance_early_inside_the_breast(plain_and_distracted):
    plain, busy = plain_and_distracted
    sub_busy = busy.exam.phases[1].array - busy.exam.phases[0].array
    sub_plain_ref = plain.exam.phases[1].array - plain.exam.phases[0].array
    added = (sub_busy - sub_plain_ref) > 50.0  # new strongly enhancing voxels
    assert np.count_nonzero(added) > 20
    inside = np.count_nonzero(added & (busy.breast_mask.array > 0)) / np.count_nonzero(added)
    assert inside > 0.8


def test_default_values_reproduce_the_classic_phantom():
    cfg = PhantomConfig(seed=3, **SMALL)
    same = PhantomConfig(seed=3, vessel_trees=0, axillary_nodes=0, skin_folds=0, motion_mm=0.0,
                         muscle_enhancement_percent=25.0, skin_enhancement_percent=30.0, **SMALL)
    a, b = generate_phantom(cfg), generate_phantom(same)
    for pa, pb in zip(a.exam.phases, b.exam.phases):
        assert np.array_equal(pa.array, pb.array)
    assert draw_config("default", 3) == PhantomConfig(seed=3)


def test_motion_moves_post_phases_only():
    still = generate_phantom(PhantomConfig(seed=4, **SMALL))
    moved = generate_phantom(PhantomConfig(seed=4, motion_mm=6.0, **SMALL))
    assert np.array_equal(still.exam.phases[0].array, moved.exam.phases[0].array)
    assert not np.allclose(still.exam.phases[2].array, moved.exam.phases[2].array)


def test_compound_oblique_direction_is_a_rotation():
    cfg = PhantomConfig(seed=0, oblique_deg=20, oblique_axis="z", oblique2_deg=20, oblique2_axis="x")
    d = cfg.direction_matrix
    np.testing.assert_allclose(d @ d.T, np.eye(3), atol=1e-12)
    assert abs(d[2, 2]) < 0.95 and abs(d[0, 0]) < 0.95  # rotated about two axes


def test_families_are_deterministic_and_heldout_ranges_leave_training():
    assert draw_config("training", 2001) == draw_config("training", 2001)
    assert draw_config("training", 2001) != draw_config("training", 2002)
    for name, fam in FAMILIES.items():
        if not fam.heldout:
            continue
        outside = [f.name for f in dataclasses.fields(fam)
                   if isinstance(getattr(fam, f.name), tuple) and isinstance(getattr(TRAINING, f.name), tuple)
                   and (getattr(fam, f.name)[0] > getattr(TRAINING, f.name)[1]
                        or getattr(fam, f.name)[1] < getattr(TRAINING, f.name)[0])]
        assert outside or fam.fat_saturated_probability == 0.0, name
    cfg = draw_config("heldout-oblique", 5)
    assert abs(cfg.oblique_deg) >= 17 and abs(cfg.oblique2_deg) >= 17


def test_non_fat_suppressed_training_family_changes_only_fat_suppression():
    for seed in (3000, 3001, 3512, 3600):
        drawn = draw_config("training", seed)
        assert draw_config("training-nonfatsat", seed) == dataclasses.replace(drawn, fat_saturated=False)
    assert not FAMILIES["training-nonfatsat"].heldout


def test_bad_values_name_the_field():
    with pytest.raises(InputError, match="vessel_trees"):
        PhantomConfig(vessel_trees=9)
    with pytest.raises(InputError, match="slice_thickness_mm"):
        PhantomConfig(slice_thickness_mm=0.1)
    with pytest.raises(InputError, match="oblique2_axis"):
        PhantomConfig(oblique2_axis="w")
    with pytest.raises(InputError, match="unknown phantom family"):
        draw_config("nope", 1)
