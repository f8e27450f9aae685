"""Out-of-process runner: JSON progress parsing, success/failure states, cancel kills the process group."""
from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest

from BreastLesionSegLib import process

CHILD = textwrap.dedent("""
    import json, os, subprocess, sys, time
    out = sys.argv[1]; mode = sys.argv[2]
    def emit(**kw):
        print(json.dumps(kw), flush=True)
    print("INFO loading exam", file=sys.stderr, flush=True)
    emit(event="progress", stage="load", fraction=0.1, message="phases")
    print("not json {", flush=True)
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "partial.txt"), "w").write("x")
    if mode == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open(os.path.join(os.path.dirname(out), "..", "grandchild.pid"), "w").write(str(child.pid))
        emit(event="progress", stage="infer", fraction=0.5, message="window 1/2")
        time.sleep(60)
    if mode == "fail":
        emit(event="error", message="phase 'post1' is 2D")
        sys.exit(2)
    emit(event="epoch", epoch=1, epochs=2, train_loss=0.5, val_dice=0.7, eta_s=3.0)
    emit(event="done", output=out)
""")


def _run(tmp_path, mode):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    run_dir = tmp_path / "runs" / "r1"
    return process.OutOfProcessRun([sys.executable, str(script), str(run_dir / "out"), mode], run_dir=run_dir,
                                   env=process.child_environment(), name=f"test-{mode}")


def _alive(pid: int, wait_s: float = 3.0) -> bool:
    """True while ``pid`` runs (a zombie waiting for a reaper counts as gone)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < wait_s:
        try:
            with open(f"/proc/{pid}/status") as f:
                state = [line for line in f if line.startswith("State:")][0]
        except (FileNotFoundError, IndexError):
            return False
        if "Z" in state.split()[1]:
            return False
        time.sleep(0.05)
    return True


def test_parse_progress_line():
    ev = process.parse_progress_line('{"event": "progress", "stage": "infer", "fraction": 1.5, "message": "w"}')
    assert ev.event == "progress" and ev.fraction == 1.0 and ev.message == "infer: w"
    ep = process.parse_progress_line('{"event":"epoch","epoch":3,"epochs":12,"train_loss":0.25,"val_dice":0.5}')
    assert ep.fraction == pytest.approx(0.25) and "val Dice 0.500" in ep.message
    assert process.parse_progress_line("INFO something") is None
    assert process.parse_progress_line('{"no_event": 1}') is None
    assert process.parse_progress_line("{broken") is None


def test_successful_run_collects_events_and_logs(tmp_path):
    run = _run(tmp_path, "ok").start()
    assert run.wait(timeout_s=60) == process.SUCCEEDED
    assert [e.event for e in run.events] == ["progress", "epoch", "done"]
    assert run.done_output == str(tmp_path / "runs" / "r1" / "out") and run.fraction == 1.0
    assert "INFO loading exam" in run.log_lines and "not json {" in run.log_lines
    assert (tmp_path / "runs" / "r1" / "out" / "partial.txt").exists()


def test_failed_run_reports_the_cli_error_and_cleans_up(tmp_path):
    run = _run(tmp_path, "fail").start()
    assert run.wait(timeout_s=60) == process.FAILED
    assert run.returncode == 2 and run.error_message == "phase 'post1' is 2D"
    assert not (tmp_path / "runs" / "r1").exists()


@pytest.mark.skipif(os.name != "posix", reason="process-group check uses POSIX signals")
def test_cancel_terminates_the_process_group_and_removes_outputs(tmp_path):
    run = _run(tmp_path, "hang").start()
    t0 = time.monotonic()
    while run.fraction != 0.5:
        run.poll()
        assert time.monotonic() - t0 < 60, "child never reported progress"
        time.sleep(0.05)
    grandchild = int((tmp_path / "runs" / "grandchild.pid").read_text(encoding="utf-8"))
    assert run.cancel(grace_s=5) == process.CANCELLED
    assert run.returncode != 0
    assert not (tmp_path / "runs" / "r1").exists()
    assert not _alive(grandchild), "the worker the CLI started must be gone too"
    with pytest.raises(RuntimeError, match="already started"):
        run.start()


def test_cli_command_runs_the_core_package():
    cmd = process.cli_command(["segment", "a.nrrd"], python="/py")
    assert cmd == ["/py", "-m", "breastlesionseg.cli.main", "segment", "a.nrrd"]
    env = process.child_environment(threads=2)
    assert env["PYTHONPATH"].split(os.pathsep)[0] == process.core_pythonpath()
    assert os.path.isdir(os.path.join(process.core_pythonpath(), "breastlesionseg"))
    assert env["OMP_NUM_THREADS"] == "2"
