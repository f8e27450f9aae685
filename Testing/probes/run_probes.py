"""Hostile-input probes of issue 14: build each bad input in a temporary folder, run the real CLI on it and
print a table ``row | probe | expected | actual | verdict``.

Run from a checkout (any working directory; the package must be installed, e.g. ``pip install -e .``)::

    python Testing/probes/run_probes.py            # all probes: three full segment runs, minutes on 2 cores
    python Testing/probes/run_probes.py --rows 1 2  # some rows
    python Testing/probes/run_probes.py --keep      # keep the temporary folder to look at the inputs

The exit status is 0 when every probe behaves as expected, 1 otherwise. Rows 12 (model checksum trust),
15 (Slicer work folder) and 16 (backend-thread exit) are probed by their own tests; a full disk (row 8)
is covered by ``Testing/Python/inference/test_output_safety.py`` (it needs a small file system).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk

#: the CLI as a user runs it
CLI = [sys.executable, "-m", "breastlesionseg.cli.main"]
#: fast, deterministic inference settings for the probes (the shipped demo model)
SEGMENT_OPTIONS = ["--device", "cpu", "--backend", "eager", "--progress", "none"]


@dataclass
class Outcome:
    """What a probe saw and whether it is what issue 14 expects."""

    actual: str
    ok: bool


@dataclass
class Probe:
    """One row of the table."""

    row: str
    title: str
    expected: str
    run: Callable[[Path], Outcome]


def cli(*args: str, env: dict | None = None, timeout: float = 3600) -> subprocess.CompletedProcess:
    """Run ``breastlesionseg ARGS`` and capture its output."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def said(proc: subprocess.CompletedProcess, pattern: str) -> str:
    """The first output line matching ``pattern`` (else the last line), shortened."""
    lines = (proc.stdout + proc.stderr).splitlines()
    hit = next((ln for ln in lines if re.search(pattern, ln, re.IGNORECASE)), lines[-1] if lines else "")
    return hit.strip()[:150]


def refused(proc: subprocess.CompletedProcess, pattern: str) -> Outcome:
    """Expected: exit 2 and a message matching ``pattern``."""
    ok = proc.returncode == 2 and re.search(pattern, proc.stdout + proc.stderr, re.IGNORECASE) is not None
    return Outcome(f"exit {proc.returncode}: {said(proc, pattern)}", ok)


# ------------------------------------------------------------------------------------------------ inputs


def phantom(folder: Path, seed: int = 1) -> list[str]:
    """A small phantom exam (pre, post1, post2) written with the CLI; returns the phase paths."""
    if not (folder / "pre.nii.gz").is_file():
        subprocess.run([*CLI, "phantom", "-o", str(folder), "--seed", str(seed), "--size", "112,64,32",
                        "--n-post", "2", "--lesions", "1,2"], check=True, capture_output=True)
    return [str(folder / f"{n}.nii.gz") for n in ("pre", "post1", "post2")]


def truncate(src: str, dst: Path) -> Path:
    """Copy the first half of the bytes of ``src``."""
    raw = Path(src).read_bytes()
    dst.write_bytes(raw[: len(raw) // 2])
    return dst


# ------------------------------------------------------------------------------------------------ probes


def probe_truncated(tmp: Path) -> Outcome:
    pre, post1, post2 = phantom(tmp / "ph")
    cut_gz = truncate(post1, tmp / "post1_half.nii.gz")
    plain = tmp / "pre.nii"
    sitk.WriteImage(sitk.ReadImage(pre), str(plain))
    cut_nii = truncate(str(plain), tmp / "pre_half.nii")
    runs = {
        "segment .nii.gz": cli("segment", pre, str(cut_gz), post2, "-o", str(tmp / "out1"), *SEGMENT_OPTIONS),
        "inspect .nii": cli("inspect", str(cut_nii), post1),
        "breast-mask": cli("breast-mask", str(cut_gz), "-o", str(tmp / "bm.nii.gz")),
        "dataset add": cli("dataset", "add", str(tmp / "ds"), "--case-id", "c1", "--phases", pre, str(cut_gz),
                           "--lesions", str(tmp / "ph" / "lesions.nii.gz")),
    }
    bad = [name for name, proc in runs.items() if not refused(proc, "truncated").ok]
    return Outcome("all refused: " + said(runs["segment .nii.gz"], "truncated") if not bad else f"NOT refused: {bad}",
                   not bad and not (tmp / "out1").exists())


def probe_nan(tmp: Path) -> Outcome:
    pre, post1, _ = phantom(tmp / "ph")
    image = sitk.Cast(sitk.ReadImage(post1), sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(image)
    arr[5, 10:14, 20] = np.nan
    arr[6, 6, 6] = np.inf
    bad = sitk.GetImageFromArray(arr)
    bad.CopyInformation(image)
    sitk.WriteImage(bad, str(tmp / "post1_nan.nii.gz"))
    return refused(cli("segment", pre, str(tmp / "post1_nan.nii.gz"), "-o", str(tmp / "out"), *SEGMENT_OPTIONS),
                   r"4 NaN, 1 Inf")


def probe_reversed(tmp: Path) -> Outcome:
    phases = phantom(tmp / "ph")[::-1]
    return refused(cli("segment", *phases, "-o", str(tmp / "out"), *SEGMENT_OPTIONS), "implausible phase order")


def probe_concurrent(tmp: Path) -> Outcome:
    phases = phantom(tmp / "ph")
    out = tmp / "shared_out"
    procs = [subprocess.Popen([*CLI, "segment", *phases, "-o", str(out), *SEGMENT_OPTIONS], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=3600), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    loser = next((r for r in results if r[0] != 0), None)
    text = (loser[1] + loser[2]) if loser else ""
    ok = codes == [0, 2] and "being written by another run" in text and (out / "metrics.json").is_file()
    return Outcome(f"exit codes {codes}; " + (re.search(r"output .*another run[^;]*", text) or [""])[0][:110], ok)


def probe_dicom_names(tmp: Path) -> Outcome:
    from breastlesionseg.geometry import Geometry, Volume
    from breastlesionseg.io import write_dicom_series

    geo = Geometry((17, 15, 7), (0.9, 0.9, 2.0), (0.0, 0.0, 0.0))
    rng = np.random.default_rng(0)
    study = tmp / "study"
    for number, desc, t, rise in [(3, "Ax Vibrant pre", 100.0, 0), (4, "Ax Vibrant post1", 200.0, 80),
                                  (5, "Ax Vibrant post2", 300.0, 120), (6, "Ax Vibrant post3", 400.0, 140),
                                  (2, "Ax T2 FSE", 50.0, 0)]:
        vol = Volume((rng.uniform(100, 120, geo.shape_zyx) + rise).astype(np.int16), geo)
        write_dicom_series(vol, study / f"s{number}", series_description=desc, series_number=number,
                           study_uid="1.2.3", acquisition_time_s=t)
    proc = cli("inspect", str(study), "--json")
    doc = json.loads(proc.stdout) if proc.returncode == 0 else {}
    chosen = [p["dicom"]["description"] for p in doc.get("phases", [])]
    warned = re.search(r"WARNING.*'Ax T2 FSE'.*skipped: description has 'T2'", proc.stderr) is not None
    return Outcome(f"exit {proc.returncode}: chose {chosen}; T2 skip warned: {warned}",
                   chosen == ["Ax Vibrant pre", "Ax Vibrant post1", "Ax Vibrant post2", "Ax Vibrant post3"] and warned)


def probe_shifted_seg(tmp: Path) -> Outcome:
    from breastlesionseg.io import read_label_volume
    from breastlesionseg.io.seg_nrrd import write_seg_nrrd
    from breastlesionseg.geometry import Geometry, Volume

    phases = phantom(tmp / "ph")
    lesions = read_label_volume(tmp / "ph" / "lesions.nii.gz")
    breast = read_label_volume(tmp / "ph" / "breast_mask.nii.gz")
    g = lesions.geometry
    shifted = Geometry(g.size, g.spacing, (g.origin[0] + 20.0, g.origin[1], g.origin[2]), g.direction)
    seg = write_seg_nrrd(tmp / "shifted.seg.nrrd", Volume(breast.array, shifted), Volume(lesions.array, shifted))
    proc = cli("dataset", "add", str(tmp / "ds"), "--case-id", "c1", "--phases", *phases, "--seg-nrrd", str(seg))
    return refused(proc, "geometry mismatch")


def _nifti_claiming(path: Path, size_xyz: tuple[int, int, int]) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(np.arange(105, dtype=np.int16).reshape(3, 5, 7)), str(path))
    raw = bytearray(path.read_bytes())
    raw[42:48] = struct.pack("<3h", *size_xyz)
    path.write_bytes(bytes(raw))
    return path


def probe_huge(tmp: Path) -> Outcome:
    paths = [str(_nifti_claiming(tmp / f"p{k}.nii", (1024, 1024, 400))) for k in range(5)]
    proc = cli("segment", *paths, "-o", str(tmp / "out"), *SEGMENT_OPTIONS, env={"BREASTLESIONSEG_MAX_MEMORY_GB": "16"})
    first = refused(proc, r"need about .* GiB of memory")
    geo_noise = tmp / "noise.nii.gz"
    noise = sitk.GetImageFromArray(np.random.default_rng(7).normal(100, 30, (57, 59, 61)).astype(np.float32))
    noise.SetSpacing((16.0, 16.0, 16.0))
    sitk.WriteImage(noise, str(geo_noise))
    bm = cli("breast-mask", str(geo_noise), "-o", str(tmp / "noise_mask.nii.gz"))
    flagged = "implausible" in bm.stdout
    return Outcome(f"{first.actual} | noise 'breast': {said(bm, 'implausible')[:60]}", first.ok and flagged)


def probe_unwritable(tmp: Path) -> Outcome:
    pre, post1, _ = phantom(tmp / "ph")
    (tmp / "a_file").write_text("in the way")
    t0 = time.perf_counter()
    proc = cli("segment", pre, post1, "-o", str(tmp / "a_file" / "out"), *SEGMENT_OPTIONS)
    out = refused(proc, "cannot be written")
    return Outcome(f"{out.actual} ({time.perf_counter() - t0:.0f} s)", out.ok)


def probe_stale_partial_and_force_backup(tmp: Path) -> tuple[Outcome, Outcome]:
    phases = phantom(tmp / "ph")
    out = tmp / "out"
    first = cli("segment", *phases, "-o", str(out), *SEGMENT_OPTIONS)
    if first.returncode != 0:
        fail = Outcome(f"first run failed: exit {first.returncode} {said(first, 'error')}", False)
        return fail, fail
    # row 9: a run killed with -9 during its final write left a partial folder and its lock
    partial = tmp / ".out.partial-killed"
    partial.mkdir()
    (partial / "lesions.nii.gz").write_bytes(b"3 of 5 files")
    (tmp / ".out.lock").write_text(json.dumps({"pid": 4_000_000, "host": os.uname().nodename}))
    # row 10: the reader edited the segmentation in Slicer
    edited = (out / "segmentation.seg.nrrd").read_bytes() + b"\n"
    (out / "segmentation.seg.nrrd").write_bytes(edited)
    again = cli("segment", *phases, "-o", str(out), "--force", *SEGMENT_OPTIONS)
    backups = sorted(p.name for p in out.glob("segmentation.edited-*.seg.nrrd"))
    row9 = Outcome(f"exit {again.returncode}; partial folder left: {partial.exists()}; "
                   f"{said(again, 'interrupted run')[:70]}", again.returncode == 0 and not partial.exists())
    kept = bool(backups) and (out / backups[0]).read_bytes() == edited
    row10 = Outcome(f"exit {again.returncode}; backups {backups}", again.returncode == 0 and kept)
    return row9, row10


def probe_coverage(tmp: Path) -> Outcome:
    pre, post1, _ = phantom(tmp / "ph")
    image = sitk.ReadImage(post1)
    image.SetOrigin([o + 0.45 * s for o, s in zip(image.GetOrigin(), image.GetSpacing())])
    sitk.WriteImage(image, str(tmp / "post1_other_grid.nii.gz"))
    proc = cli("inspect", pre, str(tmp / "post1_other_grid.nii.gz"), "--json")
    doc = json.loads(proc.stdout) if proc.returncode == 0 else {"phases": [{}, {}]}
    cover = doc["phases"][1].get("covers_pre_percent")
    return Outcome(f"exit {proc.returncode}: fills {cover}% of the pre voxels", cover == 100.0)


def probe_bad_checkpoint(tmp: Path) -> Outcome:
    import torch

    phases = phantom(tmp / "ph")
    added = cli("dataset", "add", str(tmp / "ds"), "--case-id", "c1", "--phases", *phases,
                "--lesions", str(tmp / "ph" / "lesions.nii.gz"), "--breast-mask", str(tmp / "ph" / "breast_mask.nii.gz"))
    if added.returncode != 0:
        return Outcome(f"dataset add failed: {said(added, 'error')}", False)
    ckpt = tmp / "train_out" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"format": "x", "payload": _Pickled()}, ckpt)
    proc = cli("train", "--data", str(tmp / "ds"), "--output", str(tmp / "train_out"), "--resume", "--epochs", "1",
               "--progress", "none")
    out = refused(proc, "refusing to load it")
    unsafe = "weights_only" in proc.stdout + proc.stderr
    return Outcome(out.actual + (" [relays weights_only advice!]" if unsafe else ""), out.ok and not unsafe)


class _Pickled:
    """An object whose unpickling would call a function (what a malicious checkpoint does)."""

    def __reduce__(self):
        return (os.getpid, ())


def probe_percent_enhancement(tmp: Path) -> Outcome:  # noqa: ARG001 - API probe
    from breastlesionseg.exam import DCEExam
    from breastlesionseg.geometry import Geometry, Volume
    from breastlesionseg.metrics import lesion_metrics

    geo = Geometry((9, 7, 5), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    pre = np.random.default_rng(2).uniform(50.0, 150.0, geo.shape_zyx).astype(np.float32)
    pre[2, 3, 2] = 0.5  # a vessel voxel: pre-contrast signal ~0
    post = pre.copy()
    post[2, 3, 2] = 400.0
    labels = np.zeros(geo.shape_zyx, np.uint8)
    labels[2, 3, 2] = 1
    m = lesion_metrics(DCEExam([Volume(pre, geo, name="pre"), Volume(post, geo, name="post1")]), labels,
                       np.ones(geo.shape_zyx, np.uint8))
    peak = m["lesions"][0]["peak_pe_early_percent"]
    return Outcome(f"peak PE {peak:.0f}% (classic (S1-S0)/S0 would be 79900%)", peak < 1000)


def all_probes() -> list[Probe]:
    """Every probe in row order (rows 9 and 10 share one pair of runs)."""
    shared: dict = {}

    def row9(tmp: Path) -> Outcome:
        shared["9_10"] = probe_stale_partial_and_force_backup(tmp)
        return shared["9_10"][0]

    def row10(tmp: Path) -> Outcome:  # noqa: ARG001
        return shared["9_10"][1] if "9_10" in shared else probe_stale_partial_and_force_backup(tmp)[1]

    return [
        Probe("1", ".nii.gz / .nii cut to half (segment, inspect, breast-mask, dataset add)", "exit 2, 'truncated'",
              probe_truncated),
        Probe("2", "NaN/Inf voxels in a float NIfTI", "exit 2, counts NaN/Inf", probe_nan),
        Probe("3", "phases given post2, post1, pre", "exit 2, 'implausible phase order'", probe_reversed),
        Probe("4", "two segment runs into one new --output at once", "one exit 0, one exit 2", probe_concurrent),
        Probe("5", "DICOM study with 'Ax Vibrant post2' + a T2 series", "4 phases kept, T2 skip = WARNING",
              probe_dicom_names),
        Probe("6", "dataset add --seg-nrrd 20 mm off the exam", "exit 2, 'geometry mismatch'", probe_shifted_seg),
        Probe("7", "5 x 1024x1024x400 headers (16 GiB budget); noise 'breast'", "exit 2 before reading; flagged",
              probe_huge),
        Probe("8", "--output inside a file", "exit 2 at once, 'cannot be written'", probe_unwritable),
        Probe("9", "partial folder + lock of a kill -9'ed run", "next run cleans it", row9),
        Probe("10", "--force over a reader-edited segmentation.seg.nrrd", "timestamped backup kept", row10),
        Probe("11", "phase on a grid 0.45 voxel off, same field of view", "fills 100%", probe_coverage),
        Probe("13", "train --resume with a code-carrying checkpoint", "exit 2, no unsafe advice",
              probe_bad_checkpoint),
        Probe("14", "lesion voxel with pre-contrast signal ~0 (API)", "peak PE on the tissue's scale",
              probe_percent_enhancement),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", default=None, help="only these rows (e.g. 1 4 10)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    probes = [p for p in all_probes() if args.rows is None or p.row in args.rows]
    root = Path(tempfile.mkdtemp(prefix="bls-probes-"))
    failures = 0
    print(f"{'row':>3} | {'probe':<62} | {'expected':<34} | actual | verdict")
    for probe in probes:
        folder = root / f"row{probe.row}"
        folder.mkdir()
        t0 = time.perf_counter()
        try:
            outcome = probe.run(folder)
        except Exception as exc:  # noqa: BLE001 - a crashing probe is a failed probe, reported in the table
            outcome = Outcome(f"probe crashed: {type(exc).__name__}: {exc}", False)
        failures += not outcome.ok
        print(f"{probe.row:>3} | {probe.title:<62} | {probe.expected:<34} | {outcome.actual} | "
              f"{'PASS' if outcome.ok else 'FAIL'} ({time.perf_counter() - t0:.0f} s)", flush=True)
    if args.keep:
        print(f"inputs kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{len(probes) - failures}/{len(probes)} probes as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
