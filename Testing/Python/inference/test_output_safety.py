"""No run replaces another's results: one run per output folder, stale partial folders cleaned, reader edits
kept as backups under --force, disk-full and unwritable locations reported clearly with nothing left behind."""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import subprocess
import sys

import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.inference import InferenceConfig, SegmentationEngine, write_outputs
from breastlesionseg.io.output_claim import claim_output, lock_path


@pytest.fixture(scope="module")
def result_and_exam(oblique_case, handset_factory):
    case = oblique_case
    net, card = handset_factory()
    engine = SegmentationEngine(InferenceConfig(device="cpu", crop_margin_mm=3.0, backend="eager"),
                                model=net, card=card, breast_segmenter=lambda exam: case.breast)
    return engine.run(case.exam), case


def test_second_run_on_a_claimed_folder_fails_and_the_first_succeeds(tmp_path, result_and_exam):
    result, case = result_and_exam
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom breastlesionseg.io.output_claim import claim_output\n"
                               "with claim_output(sys.argv[1]):\n    print('claimed', flush=True)\n    time.sleep(60)\n",
         str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "claimed"
        with pytest.raises(InputError, match=rf"being written by another run \(pid {holder.pid}"):
            write_outputs(result, case.exam, out)
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed (-9): its lock is stale and is taken over
    write_outputs(result, case.exam, out)
    assert (out / "metrics.json").is_file() and not lock_path(out.absolute()).exists()


def test_nested_claims_in_one_process_are_reentrant(tmp_path, result_and_exam):
    result, case = result_and_exam
    out = tmp_path / "out"
    with claim_output(out):
        write_outputs(result, case.exam, out)  # the command holds the claim; the writer re-enters it
        assert lock_path(out.absolute()).exists()
    assert not lock_path(out.absolute()).exists()


def test_partial_folder_of_a_killed_run_is_removed_by_the_next_run(tmp_path, result_and_exam, caplog):
    result, case = result_and_exam
    out = tmp_path / "out"
    partial = tmp_path / ".out.partial-k9x"
    partial.mkdir()
    (partial / "lesions.nii.gz").write_bytes(b"3 of 5 files")
    lock_path(out.absolute()).write_text(json.dumps({"pid": 2 ** 22 + 12345, "host": os.uname().nodename}))
    with caplog.at_level("WARNING"):
        write_outputs(result, case.exam, out)
    assert not partial.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert any("interrupted run" in r.getMessage() for r in caplog.records)


def test_force_keeps_an_edited_segmentation_as_a_timestamped_backup(tmp_path, result_and_exam):
    result, case = result_and_exam
    out = tmp_path / "out"
    write_outputs(result, case.exam, out)
    write_outputs(result, case.exam, out, overwrite=True)  # unedited: replaced, no backup
    assert not [p.name for p in out.iterdir() if ".edited-" in p.name]
    edited = (out / "segmentation.seg.nrrd").read_bytes() + b"reader edit"
    (out / "segmentation.seg.nrrd").write_bytes(edited)
    write_outputs(result, case.exam, out, overwrite=True)
    backups = [p for p in out.iterdir() if ".edited-" in p.name]
    assert len(backups) == 1 and backups[0].name.startswith("segmentation.edited-")
    assert backups[0].name.endswith(".seg.nrrd") and backups[0].read_bytes() == edited
    assert (out / "segmentation.seg.nrrd").read_bytes() != edited


def test_disk_full_mid_write_is_a_clear_error_and_leaves_nothing(tmp_path, result_and_exam, monkeypatch):
    result, case = result_and_exam

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("breastlesionseg.inference.overview.render_overview", full)
    with pytest.raises(InputError, match="no space left on the device.*nothing was written"):
        write_outputs(result, case.exam, tmp_path / "never")
    assert list(tmp_path.iterdir()) == []


def test_a_wrapped_write_error_on_a_full_device_is_reported_as_full(tmp_path, result_and_exam, monkeypatch):
    result, case = result_and_exam

    def itk_failure(*args, **kwargs):  # SimpleITK wraps the system error in a RuntimeError
        raise RuntimeError("Exception thrown in SimpleITK ImageFileWriter_Execute: could not write")

    monkeypatch.setattr("breastlesionseg.inference.overview.render_overview", itk_failure)
    with pytest.raises(RuntimeError, match="could not write"):  # a device with space: the error passes through
        write_outputs(result, case.exam, tmp_path / "never")
    # the device fills up during the write (the free-space check before the run had passed)
    monkeypatch.setattr("breastlesionseg.io.atomic._device_nearly_full", lambda target: True)
    with pytest.raises(InputError, match="no space left on the device.*nothing was written"):
        write_outputs(result, case.exam, tmp_path / "never")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_location_is_refused_before_writing(tmp_path, result_and_exam):
    result, case = result_and_exam
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match=r"output '.*a_file/out' cannot be written"):
        write_outputs(result, case.exam, blocker / "out")


def test_exam_warnings_are_recorded_in_metrics(tmp_path, result_and_exam):
    result, case = result_and_exam
    exam = dataclasses.replace(case.exam, warnings=["WARNING: implausible phase order post1 -> pre"])
    write_outputs(result, exam, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert doc["warnings"] == ["WARNING: implausible phase order post1 -> pre"]
    assert set(doc["output_files_sha256"]) == {"segmentation.seg.nrrd", "lesions.nii.gz", "breast_mask.nii.gz"}
