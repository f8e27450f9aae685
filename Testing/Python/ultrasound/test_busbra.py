"""BUS-BRA records and the dataset's own patient-wise folds (real data)."""
from __future__ import annotations

import pytest

from breastlesionseg.errors import DatasetError
from breastlesionseg.ultrasound.busbra import NUM_FOLDS, fold_split, read_busbra

pytestmark = pytest.mark.realdata


def test_records_and_fold_sizes(busbra_dir):
    records = read_busbra(busbra_dir)
    assert len(records) == 1875
    assert len({r.case_id for r in records}) == 1064
    assert sum(r.malignant for r in records) == 607
    assert {r.birads for r in records} == {2, 3, 4, 5}
    assert all(r.image_path.is_file() and r.mask_path.is_file() for r in records[:20])
    split = fold_split(records, 0)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (1200, 299, 376)
    assert sum(len(fold_split(records, k)["test"]) for k in range(NUM_FOLDS)) == 1875


@pytest.mark.parametrize("fold", range(NUM_FOLDS))
def test_no_patient_in_two_roles(busbra_dir, fold):
    split = fold_split(read_busbra(busbra_dir), fold)
    cases = {role: {r.case_id for r in rows} for role, rows in split.items()}
    assert not cases["train"] & cases["test"]
    assert not cases["val"] & cases["test"]


def test_fold_out_of_range(busbra_dir):
    with pytest.raises(DatasetError, match="fold"):
        fold_split(read_busbra(busbra_dir), 5)


def test_leave_one_scanner_out_split(busbra_dir):
    records = read_busbra(busbra_dir)
    split = fold_split(records, 0, holdout_device="toshiba")
    assert {r.device for r in split["test"]} == {"Toshiba Aplio 300 @12-14 MHz"}
    assert len(split["test"]) == sum(r.device.startswith("Toshiba") for r in records) == 139
    assert not any(r.device.startswith("Toshiba") for r in split["train"] + split["val"])
    plain = fold_split(records, 0)
    # the other scanners keep their fold roles; the fold's own test images are left unused
    assert {r.image_id for r in split["train"]} == {r.image_id for r in plain["train"] if not r.device.startswith("Toshiba")}
    assert not {r.case_id for r in split["test"]} & {r.case_id for r in split["train"] + split["val"]}
    with pytest.raises(DatasetError, match="exactly one scanner.*matches \\['GE Logiq 5"):
        fold_split(records, 0, holdout_device="GE")
    with pytest.raises(DatasetError, match="matches none"):
        fold_split(records, 0, holdout_device="Siemens")
