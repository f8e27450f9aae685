"""``breastlesionseg train`` through the CLI: JSON progress protocol, model folder, error event + exit 2."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from breastlesionseg.cli.main import main
from breastlesionseg.nn import load_model


def _write(arr, path):
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.5, 1.5, 2.0))
    sitk.WriteImage(img, str(path))
    return str(path)


@pytest.fixture
def cli_dataset(tmp_path):
    """Two tiny cases added with 'breastlesionseg dataset add'."""
    ds = tmp_path / "ds"
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        shape = (9, 17, 17)
        breast = np.zeros(shape, np.uint8)
        breast[1:8, 2:15, 2:15] = 1
        lesion = np.zeros(shape, np.uint8)
        lesion[3:6, 6 + seed:10 + seed, 5:9] = 1
        pre = (100 * breast + rng.normal(0, 5, shape)).astype(np.float32)
        post = (pre + 20 * breast + 150 * lesion + rng.normal(0, 5, shape)).astype(np.float32)
        d = tmp_path / f"src{seed}"
        d.mkdir()
        rc = main(["dataset", "add", str(ds), "--case-id", f"c{seed}", "--phases", _write(pre, d / "pre.nii.gz"),
                   _write(post, d / "post.nii.gz"), "--lesions", _write(lesion, d / "l.nii.gz"),
                   "--breast-mask", _write(breast, d / "b.nii.gz")])
        assert rc == 0
    return ds


def test_train_cli_json_progress_and_model(cli_dataset, tmp_path, capsys):
    out = tmp_path / "model"
    capsys.readouterr()
    rc = main(["train", "--data", str(cli_dataset), "--output", str(out), "--epochs", "2", "--patch", "8,16,16",
               "--batch-size", "2", "--patches-per-case", "2", "--base-width", "4", "--levels", "2", "--expansion", "2",
               "--lr", "1e-2", "--spacing", "1.5,1.5,2.0", "--val-fraction", "0.5", "--device", "cpu",
               "--loss", "hybrid", "--acquisition-augment", "0.5", "--subtraction-only", "0.5", "--zoom-out", "0.5", "--progress", "json",
               "--demo",
               "--model-id", "cli-test"])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    events = [json.loads(line) for line in lines]  # stdout holds only JSON lines
    kinds = [e["event"] for e in events]
    assert kinds[0] == "progress" and kinds[-1] == "done" and kinds.count("epoch") == 2
    for e in (e for e in events if e["event"] == "epoch"):
        assert e["epochs"] == 2 and isinstance(e["train_loss"], float) and 0.0 <= e["val_dice"] <= 1.0
        assert e["eta_s"] >= 0.0
    assert all(0.0 <= e["fraction"] <= 1.0 for e in events if e["event"] == "progress")
    net, card = load_model(out)
    assert card.model_id == "cli-test" and card.demo
    assert "--loss hybrid" in card.training_command and "--patch 8,16,16" in card.training_command
    assert "--acquisition-augment 0.5" in card.training_command and "--subtraction-only 0.5" in card.training_command
    assert "--zoom-out 0.5" in card.training_command


def test_train_cli_bad_dataset_reports_error_event(tmp_path, capsys):
    rc = main(["train", "--data", str(tmp_path / "missing"), "--output", str(tmp_path / "o"), "--progress", "json",
               "--patch", "16,32,32"])
    assert rc == 2
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["event"] == "error" and "not a dataset" in events[-1]["message"]
    assert not (tmp_path / "o" / "model_card.json").exists()


def test_train_cli_rejects_bad_patch(tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "--data", str(tmp_path), "--output", str(tmp_path / "o"), "--patch", "16,32"])
    assert main(["train", "--data", str(tmp_path), "--output", str(tmp_path / "o"), "--patch", "12,32,32"]) == 2


def _train_config_with(tmp_path, dest: str, option: list[str]):
    """(the ``train`` sub-command's argparse action for ``dest``, the TrainConfig of ``train ... option``)."""
    import argparse

    from breastlesionseg.cli import cmd_train

    parser = argparse.ArgumentParser()
    cmd_train.register(parser.add_subparsers())
    sub = parser._subparsers._group_actions[0].choices["train"]  # noqa: SLF001 - argparse has no public accessor
    action = next(a for a in sub._actions if a.dest == dest)  # noqa: SLF001
    args = parser.parse_args(["train", "--data", str(tmp_path), "--output", str(tmp_path / "m"), *option])
    return action, cmd_train.config_from_args(args)


def test_positive_sampling_choices_match_the_training_config(tmp_path):
    from breastlesionseg.training.config import POSITIVE_SAMPLING_MODES

    action, cfg = _train_config_with(tmp_path, "positive_sampling", ["--positive-sampling", "voxel"])
    assert tuple(action.choices) == POSITIVE_SAMPLING_MODES and action.default == POSITIVE_SAMPLING_MODES[0]
    assert cfg.positive_sampling == "voxel"


def test_normalization_choices_match_the_channels_and_reach_the_card_config(tmp_path):
    from breastlesionseg.nn.channels import NORMALIZATIONS

    action, cfg = _train_config_with(tmp_path, "normalization", ["--normalization", "robust"])
    assert tuple(action.choices) == NORMALIZATIONS and action.default == NORMALIZATIONS[0]
    assert cfg.normalization == "robust"
    assert "--normalization robust" in cfg.training_command


def test_cache_dtype_choices_match_the_training_config_and_reach_the_command(tmp_path):
    from breastlesionseg.training.config import CACHE_DTYPES

    action, cfg = _train_config_with(tmp_path, "cache_dtype", ["--cache-dtype", "float16"])
    assert tuple(action.choices) == CACHE_DTYPES and action.default == CACHE_DTYPES[0]
    assert cfg.cache_dtype == "float16"
    assert "--cache-dtype float16" in cfg.training_command


def test_train_cli_unwritable_or_claimed_output_fails_before_any_work(tmp_path, capsys):
    import os

    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    rc = main(["train", "--data", str(tmp_path / "missing"), "--output", str(blocker / "o"), "--progress", "json",
               "--patch", "16,32,32"])
    assert rc == 2
    message = json.loads(capsys.readouterr().out.splitlines()[-1])["message"]
    assert "a_file/o' cannot be written" in message
    out = tmp_path / "o"
    (tmp_path / ".o.lock").write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
    rc = main(["train", "--data", str(tmp_path / "missing"), "--output", str(out), "--progress", "json",
               "--patch", "16,32,32"])
    assert rc == 2
    assert "being written by another run" in json.loads(capsys.readouterr().out.splitlines()[-1])["message"]
