"""``breastlesionseg segment``: the CLI contract (files, geometry, seg.nrrd segments, JSON progress, errors)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import slicerio
import SimpleITK as sitk
import torch

from breastlesionseg.errors import EXIT_BAD_INPUT, EXIT_MODEL_ERROR
from breastlesionseg.cli.main import main
from breastlesionseg.io import read_label_volume, read_volume

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny randomly initialised MM-3DUNet model folder (real card + weights + sha256)."""
    from breastlesionseg.nn.factory import build_network
    from breastlesionseg.nn.model_card import ModelCard
    from breastlesionseg.nn.registry import save_model

    torch.manual_seed(1)
    card = ModelCard(model_id="tiny-cli", arch="mm3dunet",
                     config={"in_channels": 3, "out_channels": 1, "base_width": 4, "levels": 2, "expansion": 2,
                             "act_channels": 4},
                     input_channels=["pre", "post1", "sub1"], target_spacing_mm=(5.0, 5.0, 6.0),
                     patch_size=(24, 40, 72), threshold=0.5)
    folder = tmp_path_factory.mktemp("models") / "tiny-cli"
    save_model(build_network("mm3dunet", card.config), card, folder)
    return folder


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory) -> dict:
    """A small oblique phantom exam written as NIfTI phases (plus its truth)."""
    from breastlesionseg.phantom import PhantomConfig, generate_phantom, write_phantom

    phantom = generate_phantom(PhantomConfig(seed=3, size=(96, 64, 32), oblique_deg=12.0, n_post=2))
    return write_phantom(phantom, tmp_path_factory.mktemp("phantom") / "seed3")


def _phases(files: dict) -> list[str]:
    return [str(files[k]) for k in ("pre", "post1", "post2")]


def test_segment_writes_the_contract_files_on_the_pre_grid(tmp_path, tiny_model, phantom_files, capsys):
    out = tmp_path / "result"
    code = main(["segment", *_phases(phantom_files), "--output", str(out), "--model", str(tiny_model),
                 "--device", "cpu", "--save-probability", "--progress", "none"])
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["segmentation.seg.nrrd", "lesions.nii.gz", "breast_mask.nii.gz", "metrics.json",
                            "overview.png", "probability.nii.gz"])
    pre = read_volume(phantom_files["pre"])
    assert pre.geometry.orientation_code() != "LPS" or not np.allclose(pre.geometry.direction,
                                                                        np.eye(3).ravel())  # oblique input
    lesions = read_label_volume(out / "lesions.nii.gz")
    breast = read_label_volume(out / "breast_mask.nii.gz")
    for vol in (lesions, breast, read_volume(out / "probability.nii.gz")):
        assert vol.geometry.size == pre.geometry.size
        np.testing.assert_allclose(vol.geometry.spacing, pre.geometry.spacing, atol=1e-6)
        np.testing.assert_allclose(vol.geometry.origin, pre.geometry.origin, atol=1e-4)
        np.testing.assert_allclose(vol.geometry.direction, pre.geometry.direction, atol=1e-6)
    assert set(np.unique(breast.array)) <= {0, 1, 2} and np.any(breast.array == 1) and np.any(breast.array == 2)
    assert not np.any(lesions.array[breast.array == 0])  # restricted to the breast
    n = int(lesions.array.max())
    seg = slicerio.read_segmentation(str(out / "segmentation.seg.nrrd"))
    assert slicerio.segment_names(seg) == ["Breast left", "Breast right"] + [f"Lesion {k}" for k in range(1, n + 1)]
    doc = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert doc["model"]["id"] == "tiny-cli" and len(doc["model"]["sha256"]) == 64 and doc["model"]["demo"] is False
    assert doc["totals"]["lesion_count"] == n and doc["device"].startswith("cpu")
    assert {"load_exam", "breast_region", "inference", "metrics", "total"} <= set(doc["timings_s"])
    assert doc["inputs"][0]["name"] == "pre" and doc["inputs"][0]["source"].endswith("pre.nii.gz")
    printed = capsys.readouterr().out
    assert "outputs written to" in printed and "lesion(s)" in printed


def test_progress_json_lines_parse_and_are_monotone(tmp_path, tiny_model, phantom_files, capsys):
    out = tmp_path / "json"
    code = main(["segment", *_phases(phantom_files), "-o", str(out), "--model", str(tiny_model), "--device", "cpu",
                 "--progress", "json"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    events = [json.loads(line) for line in lines]  # stdout holds nothing but JSON lines
    progress = [e for e in events if e["event"] == "progress"]
    fractions = [e["fraction"] for e in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(progress) >= 8
    stages = list(dict.fromkeys(e["stage"] for e in progress))
    assert stages.index("breast_region") < stages.index("inference") < stages.index("write_outputs")
    assert events[-1] == {"event": "done", "output": str(out)}


def test_refuses_non_empty_output_without_force(tmp_path, tiny_model, phantom_files, capsys):
    out = tmp_path / "edited"
    out.mkdir()
    (out / "segmentation.seg.nrrd").write_text("edited by a radiologist")
    args = ["segment", *_phases(phantom_files), "-o", str(out), "--model", str(tiny_model), "--device", "cpu",
            "--progress", "json"]
    assert main(args) == 2
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["event"] == "error" and "--force" in events[-1]["message"]
    assert (out / "segmentation.seg.nrrd").read_text(encoding="utf-8") == "edited by a radiologist"
    assert main(args + ["--force"]) == 0
    assert slicerio.segment_names(slicerio.read_segmentation(str(out / "segmentation.seg.nrrd")))[0] == "Breast left"


def _write(array: np.ndarray, path: Path, origin=(0.0, 0.0, 0.0), spacing=(1.0, 1.0, 1.0)) -> str:
    image = sitk.GetImageFromArray(array)
    image.SetOrigin(origin)
    image.SetSpacing(spacing[: image.GetDimension()])
    if image.GetDimension() == 3:
        image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return str(path)


def test_bad_inputs_exit_2_or_3_with_clear_message_and_no_output(tmp_path, tiny_model, phantom_files, capsys):
    pre, post1, _ = _phases(phantom_files)
    bad_weights = tmp_path / "bad-model"
    bad_weights.mkdir()
    (bad_weights / "model_card.json").write_text((tiny_model / "model_card.json").read_text(encoding="utf-8"))
    (bad_weights / "weights.pt").write_bytes((tiny_model / "weights.pt").read_bytes()[:-100])  # truncated
    far = sitk.ReadImage(post1)
    far.SetOrigin([o + 5000.0 for o in far.GetOrigin()])
    far_path = tmp_path / "far_post1.nii.gz"
    sitk.WriteImage(far, str(far_path))
    flat = _write(np.ones((40, 50), np.float32), tmp_path / "flat.nii.gz")
    cases = [
        ([pre, str(tmp_path / "missing_post1.nii.gz")], "not found"),
        ([pre], "at least one post-contrast"),
        ([pre, str(far_path)], "overlap"),
        ([pre, flat], "2D"),
        ([pre, post1, "--model", str(bad_weights)], "sha256|checksum"),  # a model error: exit 3
        ([pre, post1, "--model", str(tmp_path / "no-such-model")], "not found"),
        ([pre, post1, "--device", "tpu"], "--device 'tpu'"),
    ]
    for i, (args, message) in enumerate(cases):
        out = tmp_path / f"out{i}"
        argv = ["segment", *args, "-o", str(out), "--progress", "json"]
        if "--model" not in args:
            argv += ["--model", str(tiny_model)]
        assert main(argv) == (EXIT_MODEL_ERROR if "--model" in args else EXIT_BAD_INPUT), args
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert events[-1]["event"] == "error", args
        import re

        assert re.search(message, events[-1]["message"], re.IGNORECASE), (args, events[-1]["message"])
        assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial folders


def test_argument_validation_is_argparse_exit_2(tiny_model, phantom_files, capsys):
    for bad in (["--overlap", "1.0"], ["--threshold", "0"], ["--min-lesion-mm3", "-1"], ["--sw-batch-size", "0"],
                ["--sw-batch-size", "two"]):
        with pytest.raises(SystemExit) as exc:
            main(["segment", *_phases(phantom_files), "-o", "x", *bad])
        assert exc.value.code == 2
        assert bad[0] in capsys.readouterr().err


def test_sigterm_during_inference_leaves_no_output(tmp_path, tiny_model, phantom_files):
    """Out-of-process cancellation (the Slicer module terminates the process): nothing is left behind."""
    out = tmp_path / "cancelled"
    env = {**os.environ, "PYTHONPATH": str(REPO / "BreastLesionSeg")}
    cmd = [sys.executable, "-m", "breastlesionseg.cli.main", "segment", *_phases(phantom_files), "-o", str(out),
           "--model", str(tiny_model), "--device", "cpu", "--progress", "json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            event = json.loads(line)
            if event.get("stage") == "inference":
                proc.send_signal(signal.SIGTERM)
                break
            assert time.monotonic() < deadline
        rest = proc.stdout.read()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130
    assert '"event": "error"' in rest
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_single_dicom_study_folder_as_input(tmp_path, tiny_model):
    """One DICOM study folder is accepted as the only PHASE; outputs lie on the pre-contrast series' grid."""
    from breastlesionseg.io import write_dicom_series
    from breastlesionseg.phantom import PhantomConfig, generate_phantom

    phantom = generate_phantom(PhantomConfig(seed=5, size=(96, 64, 32), oblique_deg=-8.0, n_post=2))
    study = tmp_path / "study"
    for i, (phase, description) in enumerate(zip(phantom.exam.phases,
                                                 ("ax dyn pre", "ax dyn 1st pass", "ax dyn 2nd pass"))):
        write_dicom_series(phase, study / f"series{i + 1}", series_description=description, series_number=i + 1,
                           study_uid="1.2.826.0.1.3680043.8.498.1", temporal_position=i + 1,
                           trigger_time_ms=90000.0 * i, acquisition_time_s=90.0 * i)
    out = tmp_path / "out"
    assert main(["segment", str(study), "-o", str(out), "--model", str(tiny_model), "--device", "cpu",
                 "--progress", "none"]) == 0
    lesions = read_label_volume(out / "lesions.nii.gz")
    geo = phantom.exam.geometry
    assert lesions.geometry.size == geo.size
    np.testing.assert_allclose(lesions.geometry.origin, geo.origin, atol=1e-3)
    np.testing.assert_allclose(lesions.geometry.direction, geo.direction, atol=1e-5)
    doc = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in doc["inputs"]] == ["pre", "post1", "post2"]


def test_sw_batch_size_reaches_the_inference_config(phantom_files):
    import argparse

    from breastlesionseg.cli.cmd_segment import make_config, register
    from breastlesionseg.inference.config import InferenceConfig

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["segment", *_phases(phantom_files), "-o", "x", "--sw-batch-size", "4"])
    assert make_config(args).sw_batch_size == 4
    default = make_config(parser.parse_args(["segment", *_phases(phantom_files), "-o", "x"]))
    assert default.sw_batch_size == InferenceConfig(model="m").sw_batch_size


def test_truncated_phase_is_refused_before_any_output(tmp_path, tiny_model, phantom_files, capsys):
    pre, post1, _ = _phases(phantom_files)
    raw = Path(post1).read_bytes()
    cut = tmp_path / "post1_half.nii.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    out = tmp_path / "out"
    code = main(["segment", pre, str(cut), "-o", str(out), "--model", str(tiny_model), "--progress", "json"])
    assert code == EXIT_BAD_INPUT
    message = json.loads(capsys.readouterr().out.splitlines()[-1])["message"]
    assert "truncated" in message and "post1_half.nii.gz" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["post1_half.nii.gz"]  # no output, lock or partial left


def test_reversed_phases_refused_or_accepted_with_a_recorded_warning(tmp_path, tiny_model, phantom_files, capsys):
    phases = _phases(phantom_files)[::-1]
    base = ["segment", *phases, "--model", str(tiny_model), "--device", "cpu", "--progress", "none"]
    assert main([*base, "-o", str(tmp_path / "refused")]) == EXIT_BAD_INPUT
    assert not (tmp_path / "refused").exists()
    assert main([*base, "-o", str(tmp_path / "accepted"), "--accept-phase-order"]) == 0
    assert "WARNING: implausible phase order" in capsys.readouterr().out
    doc = json.loads((tmp_path / "accepted" / "metrics.json").read_text(encoding="utf-8"))
    assert len(doc["warnings"]) == 1 and "pre -> post1 -> post2" in doc["warnings"][0]
