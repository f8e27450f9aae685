"""select_dynamic_series on realistic study listings (headers only, no pixel data)."""
from __future__ import annotations

import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.io import SeriesInfo, select_dynamic_series
from breastlesionseg.io.dicom import relative_times_s

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _s(number: int, desc: str, t: float | None, n: int = 160, rows: int = 448, image_type: str = "ORIGINAL\\PRIMARY",
       trigger: float | None = None, study: str = "1.2.3") -> SeriesInfo:
    return SeriesInfo(series_uid=f"1.2.3.{number}", study_uid=study, description=desc, series_number=number,
                      acquisition_time_s=t, trigger_time_ms=trigger, files=[f"f{i}" for i in range(n)], rows=rows,
                      columns=rows, pixel_spacing_mm=(0.76, 0.76), orientation=AXIAL, image_type=image_type,
                      slice_spacing_mm=1.1)


def test_siemens_like_study():
    study = [
        _s(1, "localizer", 100.0, n=3, rows=256),
        _s(2, "t2_tse_tra", 200.0, n=40, rows=384),
        _s(3, "ax vibe dyn pre", 36000.0),
        _s(4, "ax vibe dyn ph1", 36095.0),
        _s(5, "ax vibe dyn ph2", 36190.0),
        _s(6, "ax vibe dyn ph3", 36285.0),
        _s(7, "ax vibe dyn SUB ph1", 36300.0, image_type="DERIVED\\SECONDARY\\SUB"),
        _s(8, "MIP ax vibe SUB", 36310.0, n=60, image_type="DERIVED\\SECONDARY"),
        _s(9, "dwi_b50_b800", 36500.0, n=30, rows=192),
        _s(10, "ax vibe dyn post", 36400.0, n=160, rows=512),  # delayed high-res post: other geometry
    ]
    chosen, why = select_dynamic_series(study)
    assert [s.series_number for s in chosen] == [3, 4, 5, 6]
    assert "ordered by acquisition time" in why and "pre-contrast = #3 'ax vibe dyn pre'" in why
    assert "'ax vibe dyn SUB ph1'" in why and "'localizer'" in why  # skipped ones are explained
    assert relative_times_s(chosen) == pytest.approx([0.0, 95.0, 190.0, 285.0])


def test_time_beats_series_number_and_pre_label_conflict_is_flagged():
    study = [_s(12, "dyn pre", 300.0), _s(10, "dyn 1st", 100.0), _s(11, "dyn 2nd", 200.0)]
    chosen, why = select_dynamic_series(study)
    # acquisition time wins (the 'pre' label disagrees and is flagged for the user)
    assert [s.series_number for s in chosen] == [10, 11, 12]
    assert "WARNING" in why and "described as pre-contrast" in why


def test_trigger_times_order_when_distinct():
    study = [_s(5, "dyn", 500.0, trigger=120000.0), _s(6, "dyn", 500.0, trigger=0.0), _s(7, "dyn", 500.0,
                                                                                          trigger=60000.0)]
    chosen, why = select_dynamic_series(study)
    assert [s.series_number for s in chosen] == [6, 7, 5] and "ordered by trigger time" in why
    assert relative_times_s(chosen) == pytest.approx([0.0, 60.0, 120.0])


def test_largest_same_geometry_group_wins_and_dynamic_names_break_ties():
    study = [_s(1, "t1 sag a", 1.0, rows=320), _s(2, "t1 sag b", 2.0, rows=320),
             _s(3, "series x", 3.0), _s(4, "series y", 4.0), _s(5, "series z", 5.0)]
    chosen, _ = select_dynamic_series(study)
    assert [s.series_number for s in chosen] == [3, 4, 5]
    tie = [_s(1, "abc", 1.0, rows=320), _s(2, "def", 2.0, rows=320), _s(3, "dyn pre", 3.0), _s(4, "dyn post", 4.0)]
    chosen, _ = select_dynamic_series(tie)
    assert [s.series_number for s in chosen] == [3, 4]


def test_errors():
    with pytest.raises(InputError, match="2 studies"):
        select_dynamic_series([_s(1, "dyn pre", 1.0), _s(2, "dyn post", 2.0, study="9.9")])
    with pytest.raises(InputError, match="no dynamic series found.*'t2'"):
        select_dynamic_series([_s(1, "t2", 1.0), _s(2, "dyn pre", 2.0, rows=256)])
    with pytest.raises(InputError, match="no DICOM series"):
        select_dynamic_series([])


@pytest.mark.parametrize("phase_word", ["post2", "Post 2", "ASSET post2"])
def test_dynamic_names_containing_excluded_letters_are_kept(phase_word, caplog):
    """"post2" holds the letters "t2" and GE's parallel imaging is called ASSET: neither is a T2 / calibration."""
    study = [_s(1, "Ax Vibrant pre", 100.0), _s(2, "Ax Vibrant post1", 200.0),
             _s(3, f"Ax Vibrant {phase_word}", 300.0), _s(4, "Ax Vibrant post3", 400.0),
             _s(5, "Ax T2 FSE", 50.0, n=40, rows=512), _s(6, "ASSET calibration", 10.0, n=30, rows=64),
             _s(7, "Ax Vibrant SUB post2", 500.0, image_type="DERIVED\\SECONDARY")]
    with caplog.at_level("WARNING", logger="breastlesionseg.io.dicom"):
        chosen, why = select_dynamic_series(study)
    assert [s.series_number for s in chosen] == [1, 2, 3, 4]
    skipped = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(skipped) == 3  # T2, calibration, subtraction: each a WARNING with its reason
    assert any("'Ax T2 FSE'" in m and "'T2'" in m for m in skipped)
    assert any("'ASSET calibration'" in m for m in skipped)
    assert any("SUB post2" in m and "'SUB'" in m for m in skipped)


@pytest.mark.parametrize("desc", ["t2_tse_tra", "T2W_SPAIR", "ax t2* gre", "ADC map", "T1map", "Sag STIR", "dwi b800",
                                  "subtraction ph1", "MIP", "3-plane localizer", "ep2d_diff"])
def test_non_dynamic_descriptions_are_excluded(desc):
    from breastlesionseg.io.dicom import EXCLUDE_PATTERN

    assert EXCLUDE_PATTERN.search(desc), desc
