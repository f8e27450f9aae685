"""``breastlesionseg model-summary --json`` reproduces Wang et al. 2025 Table 1 within 5%; argument errors exit 2."""
from __future__ import annotations

import json

import pytest

from breastlesionseg.cli.main import main

TABLE1 = [
    (["unet3d"], 1.78e6, 115.10e9),
    (["mm3dunet", "--expansion", "6"], 0.21e6, 27.05e9),
    (["mm3dunet", "--expansion", "12"], 0.33e6, 41.79e9),
    (["mm3dunet", "--expansion", "12", "--act"], 0.34e6, 42.40e9),
]


@pytest.mark.parametrize("args,params,flops", TABLE1)
def test_model_summary_json_matches_table1(args, params, flops, capsys):
    assert main(["model-summary", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["input_shape"] == [1, 1, 32, 256, 256]
    assert isinstance(out["params"], int) and isinstance(out["flops"], int)
    assert abs(out["params"] / params - 1) <= 0.05
    assert abs(out["flops"] / flops - 1) <= 0.05
    assert out["gflops"] == pytest.approx(out["flops"] / 1e9, rel=1e-6)
    assert out["config"]["act"] is ("--act" in args)


def test_model_summary_options_change_the_count(capsys):
    assert main(["model-summary", "mm3dunet", "--in-channels", "3", "--input-shape", "16,64,64",
                 "--base-width", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["input_shape"] == [1, 3, 16, 64, 64]
    assert out["config"]["in_channels"] == 3 and out["config"]["base_width"] == 4
    # FLOPs scale with the number of voxels: 32x256x256 has 32x as many as 16x64x64 (same network)
    assert main(["model-summary", "mm3dunet", "--in-channels", "3", "--input-shape", "32,256,256",
                 "--base-width", "4", "--json"]) == 0
    big = json.loads(capsys.readouterr().out)
    assert big["params"] == out["params"]
    assert big["flops"] == pytest.approx(32 * out["flops"], rel=1e-3)


@pytest.mark.parametrize("args,fragment", [
    (["mm3dunet", "--input-shape", "32,256"], "--input-shape"),
    (["mm3dunet", "--expansion", "0"], "'expansion'"),
    (["unet3d", "--expansion", "6"], "--expansion"),
])
def test_model_summary_bad_arguments_exit_2(args, fragment, caplog):
    assert main(["model-summary", *args]) == 2
    assert fragment in caplog.text
