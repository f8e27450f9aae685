"""CDD-CESM cases and patient-wise folds."""
from __future__ import annotations

from collections import defaultdict

import pytest

from breastlesionseg.errors import DatasetError
from breastlesionseg.mammography.cddcesm import patient_folds, read_cddcesm


def test_cases_parse_names_and_strip_copy_prefixes(tiny_cddcesm):
    cases = read_cddcesm(tiny_cddcesm)
    assert len(cases) == 10
    flipped = next(c for c in cases if c.name == "flipped_P1_L_DM_CC")
    assert (flipped.patient_id, flipped.laterality, flipped.kind, flipped.view, flipped.copy) == ("P1", "L", "DM", "CC", "flipped")
    assert {c.patient_id for c in cases} == {f"P{i}" for i in range(1, 7)}


@pytest.mark.parametrize("n_folds", [2, 3])
def test_folds_never_split_a_patient_and_are_balanced(tiny_cddcesm, n_folds):
    cases = read_cddcesm(tiny_cddcesm)
    folds = patient_folds(cases, n_folds)
    fold_of_patient = defaultdict(set)
    for case, fold in zip(cases, folds):
        fold_of_patient[case.patient_id].add(fold)
    assert all(len(f) == 1 for f in fold_of_patient.values())
    sizes = [folds.count(k) for k in range(n_folds)]
    assert max(sizes) - min(sizes) <= 1 + 1  # P1 holds 3 images: greedy balance within one patient's size
    assert patient_folds(cases, n_folds) == folds  # deterministic


def test_bad_datasets_are_named(tiny_cddcesm, tmp_path):
    (tiny_cddcesm / "masks" / "P2_R_DM_MLO.jpg").unlink()
    with pytest.raises(DatasetError, match="P2_R_DM_MLO"):
        read_cddcesm(tiny_cddcesm)
    with pytest.raises(DatasetError, match="images/ and masks/"):
        read_cddcesm(tmp_path / "nowhere")
    (tiny_cddcesm / "images" / "P2_R_DM_MLO.jpg").rename(tiny_cddcesm / "images" / "scan7.jpg")
    with pytest.raises(DatasetError, match="scan7"):
        read_cddcesm(tiny_cddcesm)
    with pytest.raises(DatasetError, match="folds"):
        patient_folds([], 2)


@pytest.mark.realdata
def test_real_subset_is_98_images_of_77_patients(cddcesm_dir):
    cases = read_cddcesm(cddcesm_dir)
    assert len(cases) == 98
    assert len({c.patient_id for c in cases}) == 77
    assert sum(bool(c.copy) for c in cases) == 59
    folds = patient_folds(cases, 3)
    assert sorted(folds.count(k) for k in range(3)) == [32, 33, 33]
