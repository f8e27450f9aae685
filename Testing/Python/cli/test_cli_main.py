"""The CLI entry point: lazy imports, exit codes from one place."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from breastlesionseg import errors
from breastlesionseg.cli import main as cli_main

PACKAGE_ROOT = Path(__file__).resolve().parents[3] / "BreastLesionSeg"
HEAVY = ("torch", "monai", "openvino", "onnx", "onnxruntime", "matplotlib", "scipy", "numpy", "SimpleITK", "pydicom")


def _loaded_after(code: str) -> set[str]:
    """Top-level modules loaded by ``code`` in a fresh interpreter."""
    probe = code + "\nimport sys\nprint('LOADED', ' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(PACKAGE_ROOT), "PATH": ""}, timeout=120)
    last = out.stdout.strip().splitlines()[-1].split()
    assert last[0] == "LOADED", out.stdout[-500:]
    return set(last[1:])


def test_building_the_parser_loads_no_heavy_library():
    loaded = _loaded_after("from breastlesionseg.cli.main import build_parser\nbuild_parser()")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_version_and_help_load_no_heavy_library():
    code = ("from breastlesionseg.cli.main import main\n"
            "for argv in (['--version'], ['--help'], ['segment', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit as exc:\n        assert exc.code == 0, exc.code\n")
    loaded = _loaded_after(code)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_naming_a_command_registers_it_alone_and_all_on_help():
    one = cli_main.build_parser(["export", "--help"])
    every = cli_main.build_parser(None)
    sub_one = next(a for a in one._actions if a.dest == "command")
    sub_all = next(a for a in every._actions if a.dest == "command")
    assert list(sub_one.choices) == ["export"]
    assert {"segment", "export", "train", "demo"} <= set(sub_all.choices)


@pytest.mark.parametrize("exc,code", [
    (errors.InputError("bad phase"), errors.EXIT_BAD_INPUT),
    (errors.ModelError("weights corrupt"), errors.EXIT_MODEL_ERROR),
    (errors.BackendUnavailableError("no openvino"), errors.EXIT_MODEL_ERROR),
    (errors.CancelledError("stop"), errors.EXIT_INTERRUPTED),
])
def test_errors_map_to_their_exit_code(monkeypatch, caplog, exc, code):
    def failing(args):
        raise exc

    parser = cli_main.build_parser(["export"])
    monkeypatch.setattr(cli_main, "build_parser", lambda argv=None: parser)
    parser.set_defaults(func=failing)
    parser._subparsers._group_actions[0].choices["export"].set_defaults(func=failing)
    assert cli_main.main(["export", "m", "--format", "onnx", "--into-model-dir"]) == code
    assert str(exc) in caplog.text
    assert len({errors.EXIT_OK, errors.EXIT_FAILURE, errors.EXIT_BAD_INPUT, errors.EXIT_MODEL_ERROR,
                errors.EXIT_INTERRUPTED}) == 5


def test_bad_input_while_the_backend_starts_ends_the_run_without_backend_lines(tmp_path):
    """Issue 14 row 16: the input error is the last thing said; the backend thread neither logs nor delays the exit."""
    bad = tmp_path / "pre.nii.gz"
    bad.write_text("not an image")
    cmd = [sys.executable, "-m", "breastlesionseg.cli.main", "segment", str(bad), str(bad), "--output",
           str(tmp_path / "out"), "--progress", "none"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(PACKAGE_ROOT), "PATH": "", "OMP_NUM_THREADS": "2"})
    assert done.returncode == errors.EXIT_BAD_INPUT, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    first_error = next(i for i, line in enumerate(lines) if line.startswith("ERROR"))
    assert str(bad.name) in lines[first_error]
    assert not [line for line in lines[first_error:] if "backend" in line.lower() or "openvino" in line.lower()]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("backend_busy", [True, False])
def test_the_process_leaves_without_finalising_while_the_backend_is_prepared(tmp_path, backend_busy):
    """Interpreter finalisation under a thread inside OpenVINO's compiler aborted the process (exit -6 instead
    of 2, seen under load): while that thread runs, the entry point leaves with os._exit (no atexit, no
    finalisation) after flushing the error message."""
    bad = tmp_path / "pre.nii.gz"
    bad.write_text("not an image")
    code = (
        "import atexit, sys, threading, time\n"
        "from breastlesionseg.cli.main import run_process\n"
        "from breastlesionseg.runtime.names import BACKEND_THREAD_NAME\n"
        "atexit.register(lambda: print('FINALISED', flush=True))\n"
        f"if {backend_busy}:\n"
        "    threading.Thread(target=time.sleep, args=(60,), name=BACKEND_THREAD_NAME, daemon=True).start()\n"
        f"run_process(['inspect', {str(bad)!r}])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(PACKAGE_ROOT), "PATH": ""})
    assert done.returncode == errors.EXIT_BAD_INPUT, done.stderr[-2000:]
    assert "pre.nii.gz" in done.stderr.strip().splitlines()[-1]
    assert ("FINALISED" in done.stdout) is (not backend_busy)
