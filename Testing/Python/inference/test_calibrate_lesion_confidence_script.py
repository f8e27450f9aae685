"""scripts/calibrate_lesion_confidence.py: what it refuses to calibrate on (no engine runs here)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def script(load_repo_script):
    return load_repo_script("scripts/calibrate_lesion_confidence.py")


@pytest.mark.parametrize("args, message", [
    (["--family", "no-such-family"], "is not a phantom family"),
    (["--family", "heldout-oblique"], "never used for calibration"),
    (["--seeds", "3,2000"], "never used for calibration"),
])
def test_unknown_and_held_out_inputs_are_refused_before_any_model_is_read(script, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        script.main(["no-such-model", *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_rows_without_validation_components_are_refused(script, capsys, tmp_path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"section": "heldout-oblique", "seed": 0, "rows": []}\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        script.main(["no-such-model", "--seeds", "2000-2003", "--rows", str(cases)])
    assert exc.value.code == 2 and "holds no validation component rows" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        script.main(["no-such-model", "--rows", str(tmp_path / "missing.jsonl")])
    assert exc.value.code == 2 and "does not exist" in capsys.readouterr().err
