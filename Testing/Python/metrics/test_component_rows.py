"""Reading saved component rows: benchmark ``cases.jsonl`` and calibration ``.json`` files."""
from __future__ import annotations

import json

import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.metrics.component_features import SLOW_INITIAL_PERCENT
from breastlesionseg.metrics.component_rows import read_component_cases, read_component_rows


def _row(early: float, late: float, is_lesion: bool) -> dict:
    return {"early_enhancement_percent": early, "late_change_percent": late, "is_lesion": is_lesion}


@pytest.fixture
def cases_file(tmp_path):
    path = tmp_path / "cases.jsonl"
    cases = [
        {"section": "validation", "seed": 2000, "rows": [_row(30.0, 25.0, False), _row(120.0, -15.0, True)]},
        {"section": "validation", "seed": 2001, "rows": [_row(90.0, 0.0, True)]},
        {"section": "heldout-oblique", "seed": 2000, "rows": [_row(80.0, 5.0, False)]},
    ]
    path.write_text("\n".join(json.dumps(c) for c in cases) + "\n\n", encoding="utf-8")
    return path


def test_cases_get_kinetic_descriptors_derived(cases_file):
    cases = read_component_cases(cases_file)
    assert [c["seed"] for c in cases] == [2000, 2001, 2000]
    slow, washout = cases[0]["rows"]
    assert slow["initial_slow_percent"] == pytest.approx(SLOW_INITIAL_PERCENT - 30.0)
    assert slow["delayed_persistent_percent"] > 0 and slow["delayed_washout_percent"] == 0
    assert washout["initial_slow_percent"] == 0 and washout["delayed_washout_percent"] > 0


def test_rows_of_one_section_and_seeds(cases_file, tmp_path):
    assert len(read_component_rows(cases_file)) == 3  # validation section, all seeds
    only = read_component_rows(cases_file, seeds=[2001])
    assert [r["early_enhancement_percent"] for r in only] == [90.0]
    assert len(read_component_rows(cases_file, section="heldout-oblique")) == 1
    calib = tmp_path / "calibration.json"
    calib.write_text(json.dumps({"rows": [_row(30.0, 25.0, False)]}), encoding="utf-8")
    (row,) = read_component_rows(calib)
    assert row["delayed_persistent_percent"] > 0


def test_bad_files_name_the_file_and_line(tmp_path, cases_file):
    with pytest.raises(InputError, match="does not exist"):
        read_component_cases(tmp_path / "missing.jsonl")
    cut = tmp_path / "cut.jsonl"
    cut.write_text(cases_file.read_text(encoding="utf-8").strip() + '\n{"section": "valid', encoding="utf-8")
    with pytest.raises(InputError, match=r"cut.jsonl' line 4 is not JSON"):
        read_component_cases(cut)
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"seed": 1}\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 1 is not a benchmark exam"):
        read_component_cases(odd)
    norows = tmp_path / "norows.json"
    norows.write_text("{}", encoding="utf-8")
    with pytest.raises(InputError, match="has no 'rows' list"):
        read_component_rows(norows)
