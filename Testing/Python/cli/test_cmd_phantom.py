"""``breastlesionseg phantom`` CLI: files, summary, JSON, overwrite protection, bad arguments."""
from __future__ import annotations

import json

import numpy as np
import pytest

from breastlesionseg.cli.main import main
from breastlesionseg.phantom import load_phantom

ARGS = ["--seed", "5", "--size", "56,32,16", "--n-post", "3", "--lesions", "1,2"]


def test_cli_writes_phantom_and_prints_summary(tmp_path, capsys):
    out = tmp_path / "ph"
    assert main(["phantom", "--output", str(out), *ARGS]) == 0
    text = capsys.readouterr().out
    assert "phases: pre (0 s), post1 (90 s), post2 (180 s), post3 (270 s)" in text
    assert "56 x 32 x 16 voxels" in text and "breast volumes: left" in text
    for name in ("pre", "post1", "post2", "post3", "breast_mask", "lesions"):
        assert (out / f"{name}.nii.gz").is_file()
    p = load_phantom(out)
    assert p.exam.pre.geometry.size == (56, 32, 16)
    assert np.allclose(p.exam.pre.geometry.spacing, (6.0, 6.0, 8.0))
    assert f"lesions: {len(p.lesions)}" in text
    for les in p.lesions:
        assert f"{les['volume_mm3']:.1f}" in text and les["kinetics"] in text


def test_cli_refuses_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "ph"
    assert main(["phantom", "--output", str(out), *ARGS]) == 0
    before = (out / "pre.nii.gz").read_bytes()
    capsys.readouterr()
    assert main(["phantom", "--output", str(out), *ARGS[:2], "--size", "56,32,16"]) == 2
    assert (out / "pre.nii.gz").read_bytes() == before
    assert main(["phantom", "--output", str(out), "--seed", "6", "--size", "56,32,16", "--n-post", "3", "--force",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["seed"] == 6 and doc["files"]["pre"].endswith("pre.nii.gz")
    assert (out / "pre.nii.gz").read_bytes() != before


def test_cli_oblique_and_spacing(tmp_path, capsys):
    out = tmp_path / "obl"
    assert main(["phantom", "-o", str(out), "--seed", "1", "--size", "60,40,20", "--spacing", "6,5,7",
                 "--oblique", "15", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["geometry"]["spacing_mm_xyz"] == [6.0, 5.0, 7.0]
    assert doc["geometry"]["direction_lps"][1] == pytest.approx(-np.sin(np.radians(15)))


@pytest.mark.parametrize("bad", [["--size", "10,10"], ["--n-post", "9"], ["--lesions", "3,1"],
                                 ["--spacing", "1,x,1"]])
def test_cli_bad_arguments_exit_2(tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as exc:
        rc = main(["phantom", "--output", str(tmp_path / "x"), *bad])
        raise SystemExit(rc)
    assert exc.value.code == 2
    assert not (tmp_path / "x" / "pre.nii.gz").exists()
