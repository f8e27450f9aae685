"""Auto-assignment of pre/post volumes from series names and acquisition times."""
from __future__ import annotations

import random

import pytest

from BreastLesionSegLib.input_assignment import VolumeCandidate as C, assign_inputs, exclusion_reason, phase_ordinal


def _ids(names):
    return [C(f"n{k}", n) for k, n in enumerate(names)]


def test_ge_style_names_with_distractors_in_random_order():
    names = ["ax dyn pre", "ax dyn 1st pass", "ax dyn 2nd pass", "ax dyn 3rd pass", "ax dyn 4th pass",
             "ax T2 STIR", "ax dyn 1st pass SUB", "3-plane localizer", "MIP ax dyn 2nd pass"]
    cands = _ids(names)
    by_id = {c.node_id: c.name for c in cands}
    random.Random(3).shuffle(cands)
    a = assign_inputs(cands)
    assert by_id[a.pre] == "ax dyn pre"
    assert [by_id[i] for i in a.posts] == ["ax dyn 1st pass", "ax dyn 2nd pass", "ax dyn 3rd pass", "ax dyn 4th pass"]
    assert {by_id[i]: r for i, r in a.excluded.items()} == {
        "ax T2 STIR": "T2-weighted series", "ax dyn 1st pass SUB": "subtraction series",
        "3-plane localizer": "localizer", "MIP ax dyn 2nd pass": "projection / reformat"}
    assert a.complete


def test_duke_and_siemens_names():
    duke = _ids([f"Breast_MRI_153_000{k}_{'pre' if k == 0 else f'post{k}'}" for k in (3, 0, 4, 1, 2)])
    a = assign_inputs(duke)
    names = {c.node_id: c.name for c in duke}
    assert names[a.pre].endswith("0000_pre")
    assert [names[i][-5:] for i in a.posts] == ["post1", "post2", "post3", "post4"]
    siemens = _ids(["t1_fl3d_tra_dynaVIEWS_spair_post 2", "t1_fl3d_tra_dynaVIEWS_spair_pre",
                    "t1_fl3d_tra_dynaVIEWS_spair_post 1", "t1_fl3d_tra_dynaVIEWS_spair_SUB_post 1"])
    b = assign_inputs(siemens)
    assert [b.pre] + b.posts == ["n1", "n2", "n0"] and b.excluded == {"n3": "subtraction series"}


def test_acquisition_times_override_name_order_and_pick_pre():
    cands = [C("a", "DCE", 36000.0 + 200), C("b", "DCE", 36000.0), C("c", "DCE", 36000.0 + 90),
             C("d", "DCE", 36000.0 + 420)]
    a = assign_inputs(cands)
    assert a.pre == "b" and a.posts == ["c", "a", "d"]
    assert any("earliest acquisition time" in n for n in a.notes)
    # names agree with pre, times order the posts even when the ordinals in the names disagree
    named = [C("p", "ax dyn pre", 100.0), C("x", "Ph3", 300.0), C("y", "Ph2", 400.0)]
    b = assign_inputs(named)
    assert b.pre == "p" and b.posts == ["x", "y"]


def test_ph_numbering_without_pre_word_and_unrecognisable_inputs():
    a = assign_inputs(_ids(["Ph3/ax 3d dyn", "Ph1/ax 3d dyn", "Ph2/ax 3d dyn"]))
    assert a.pre == "n1" and a.posts == ["n2", "n0"]
    assert any("please check" in n for n in a.notes)
    b = assign_inputs(_ids(["ax dyn 1st pass", "ax dyn 2nd pass"]))
    assert b.pre is None and b.posts == ["n0", "n1"] and not b.complete
    c = assign_inputs(_ids(["ax T2", "DWI b800"]))
    assert c.pre is None and c.posts == [] and len(c.excluded) == 2


@pytest.mark.parametrize("name,ordinal", [("ax dyn 3rd pass", 3), ("post_4", 4), ("Ph2/ax", 2),
                                          ("second phase", 2), ("Breast_MRI_153_0002_post2", 2), ("DCE", None)])
def test_phase_ordinal(name, ordinal):
    assert phase_ordinal(name) == ordinal


def test_exclusion_does_not_hit_phase_names():
    for name in ("ax dyn pre", "ax dyn 1st pass", "Breast_MRI_153_0001_post1", "t1_fl3d_tra_dynaVIEWS_spair_pre",
                 "Ph1/ax 3d dyn", "VIBRANT post 2", "PRE", "dyn_pre_contrast"):
        assert exclusion_reason(name) is None, name


@pytest.mark.parametrize("text,seconds", [("101530", 36930.0), ("101530.25", 36930.25), ("10:15:30", 36930.0),
                                          ("1015", 36900.0), ("", None), (None, None), ("25", None), ("ab", None)])
def test_dicom_time(text, seconds):
    from BreastLesionSegLib.input_assignment import dicom_time_s

    assert dicom_time_s(text) == seconds
