#!/usr/bin/env python
"""Benchmark the whole ``segment`` pipeline, step by step, and evaluate the shipped model on phantoms.

What it measures (one JSON file in ``benchmarks/output/`` + a table on stdout):

* the machine: CPU model, cores, torch threads, GPU (or none), library versions;
* ``segment`` on the real five-phase Duke exam (``../shared/data/duke-breast-mri-153``) and on a few
  phantoms, on the CPU and (when one is present) on the GPU: seconds per step (load_exam,
  breast_region, crop, resample, channels, inference, postprocess, metrics, write_outputs) and the
  peak resident memory of the process (``resource.getrusage``; each case runs in a fresh child process
  so the peak belongs to that case alone), plus the peak GPU memory;
* the same pipeline with MONAI's ``BasicUNet`` (randomly initialised — timing only) in place of the
  model's MM-3DUNet, at the same patch, spacing, channels and overlap, in the same run;
* on the Duke exam: what the model finds (lesions, volumes, ACT score), whether the expert lesion box
  (``Breast_MRI_153_lesion_bbox.nii.gz``) contains the largest lesion's centroid, and how many lesion
  voxels fall in the heart box (``DUKE_HEART_BOX_LPS_MM``, read off the exam by eye, documented below);
* ``--phantom-eval N``: held-out phantom seeds 0..N-1 (the acceptance set is 20): mean lesion Dice,
  detection of every lesion >= 20 mm3, false positives per exam.

Usage::

    python benchmarks/bench_segment.py                       # Duke + 2 phantoms, CPU (+GPU), both networks
    python benchmarks/bench_segment.py --phantom-eval 20      # acceptance numbers on seeds 0-19
    python benchmarks/bench_segment.py --overview docs/images/overview_duke.png
    python benchmarks/bench_segment.py --blending-threads-ab 3    # A/B: PyTorch threads while OpenVINO runs windows
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "BreastLesionSeg"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

DUKE_DIR = Path(os.environ.get("BLS_SHARED_DATA", REPO.parent / "shared" / "data")) / "duke-breast-mri-153"
DUKE_PHASES = [f"Breast_MRI_153_000{i}_{n}.nii.gz" for i, n in enumerate(["pre", "post1", "post2", "post3", "post4"])]
DUKE_BBOX = "Breast_MRI_153_lesion_bbox.nii.gz"
#: Box around the heart of the Duke exam in LPS mm (min corner, max corner), read off the post1 - pre
#: subtraction by eye: the large, strongly enhancing structure posterior to the chest wall, voxel
#: columns i 150-330, rows j >= 265 (about 10 mm behind the sternum), all slices. Lesion voxels in it are
#: false positives in the heart.
DUKE_HEART_BOX_LPS_MM = ((-60.0, 47.0, -117.0), (80.0, 180.0, 60.0))

log = logging.getLogger("bench_segment")


# ------------------------------------------------------------------------------------------ machine
def machine_info() -> dict[str, Any]:
    """CPU model, cores, threads, GPU and versions."""
    import monai
    import numpy
    import SimpleITK
    import torch

    cpu = cpu_model()
    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1), "count": torch.cuda.device_count()}
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu_model": cpu,
        "cpu_cores_visible": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "load_average_1_5_15": load,
        "memory_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "numpy": numpy.__version__,
        "simpleitk": SimpleITK.Version_VersionString(),
        "platform": platform.platform(),
    }


# ------------------------------------------------------------------------------------------ networks
def basicunet_for(card):
    """MONAI BasicUNet (default features) with the card's input channels and one output channel, random
    weights (timing only), wrapped in the package's network contract (``forward_with_aux``, ``in_channels``,
    ``size_multiple``) so the engine and the backend selection treat it like the model."""
    import torch
    from monai.networks.nets import BasicUNet

    class BasicUNetNetwork(torch.nn.Module):
        size_multiple = 16  # four 2x poolings

        def __init__(self, in_channels: int) -> None:
            super().__init__()
            self.in_channels, self.out_channels = in_channels, 1
            self.net = BasicUNet(spatial_dims=3, in_channels=in_channels, out_channels=1)

        def forward_with_aux(self, x):
            pads = []
            for n in (x.shape[4], x.shape[3], x.shape[2]):
                extra = (-n) % self.size_multiple
                pads += [extra // 2, extra - extra // 2]
            y = self.net(torch.nn.functional.pad(x, pads, mode="replicate") if any(pads) else x)
            d, h, w = x.shape[2:]
            return y[:, :, pads[4]:pads[4] + d, pads[2]:pads[2] + h, pads[0]:pads[0] + w], None

        def forward(self, x):
            return self.forward_with_aux(x)[0]

    return BasicUNetNetwork(len(card.input_channels)).eval()


def engine_for(arch: str, model: str, device: str, overlap: float | None, threads: int | None, **config):
    """A SegmentationEngine with the named model (``arch='model'``) or a BasicUNet at the same card."""
    from breastlesionseg.inference import InferenceConfig, SegmentationEngine
    from breastlesionseg.nn.registry import load_model, resolve_model

    cfg = InferenceConfig(model=model, device=device, overlap=overlap, num_threads=threads, **config)
    if arch == "model":
        return SegmentationEngine(cfg)
    folder = resolve_model(model)
    _, card = load_model(folder, device="cpu")
    return SegmentationEngine(cfg, model=basicunet_for(card), card=card, model_path=folder)


def count_parameters(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


# ------------------------------------------------------------------------------------------ Duke checks
def duke_checks(result, exam) -> dict[str, Any]:
    """Expert-box and heart checks of a Duke result (LPS physical space)."""
    import numpy as np

    from breastlesionseg.io import read_volume

    out: dict[str, Any] = {}
    labels = np.asarray(result.lesion_labels.array)
    geo = exam.geometry
    bbox_path = DUKE_DIR / DUKE_BBOX
    if bbox_path.is_file():
        from breastlesionseg.exam import resample_to_grid

        box = read_volume(bbox_path)
        if not box.geometry.same_grid(geo):
            box = resample_to_grid(box, geo, "nearest")
        inside_box = np.asarray(box.array) > 0
        out["expert_box_voxels"] = int(inside_box.sum())
        if result.n_lesions:
            lesion1 = labels == 1
            centroid_ijk = np.argwhere(lesion1).mean(axis=0)[::-1]  # (i, j, k)
            idx = tuple(int(round(v)) for v in centroid_ijk[::-1])
            out["largest_lesion_centroid_lps_mm"] = [float(v) for v in geo.index_to_lps(centroid_ijk)]
            out["largest_lesion_centroid_in_expert_box"] = bool(inside_box[idx])
            out["largest_lesion_fraction_in_expert_box"] = float(inside_box[lesion1].mean())
            out["lesion_voxels_in_expert_box_fraction_of_box"] = float((labels[inside_box] > 0).mean())
            out["lesions_touching_expert_box"] = sorted(int(v) for v in np.unique(labels[inside_box]) if v > 0)
        else:
            out["largest_lesion_centroid_in_expert_box"] = False
    lo, hi = (np.asarray(c) for c in DUKE_HEART_BOX_LPS_MM)
    zz, yy, xx = np.nonzero(labels)
    if zz.size:
        lps = geo.index_to_lps(np.stack([xx, yy, zz], axis=1).astype(float))
        in_heart = np.all((lps >= lo) & (lps <= hi), axis=1)
        out["lesion_voxels_in_heart_box"] = int(in_heart.sum())
        out["lesions_in_heart_box"] = sorted(int(v) for v in np.unique(labels[zz[in_heart], yy[in_heart], xx[in_heart]]))
    else:
        out["lesion_voxels_in_heart_box"] = 0
        out["lesions_in_heart_box"] = []
    out["heart_box_lps_mm"] = [list(lo), list(hi)]
    return out


# ------------------------------------------------------------------------------------------ one case (child)
def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """Segment one exam as ``segment`` does and time every step (runs in a fresh child process)."""
    import shutil

    import torch

    from breastlesionseg.exam import load_exam
    from breastlesionseg.inference import write_outputs

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    if spec.get("keep_torch_threads"):  # the A/B of --blending-threads-ab: the behaviour before the fix
        from breastlesionseg.inference import sliding_window

        sliding_window._torch_threads_while_blending = lambda model, device: None
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    engine = engine_for(spec["arch"], spec["model"], spec["device"], spec.get("overlap"), spec.get("threads"),
                        heatmap=bool(spec.get("heatmap")), tta=bool(spec.get("tta")),
                        backend=spec.get("backend") or "auto", sw_batch_size=int(spec["sw_batch_size"]) if spec.get("sw_batch_size") else None)
    timings["load_model"] = time.perf_counter() - t_all
    engine.prepare_backend_in_background()  # as ``segment`` does: overlaps with loading and the breast region
    truth = None
    if spec["kind"] == "duke":
        t0 = time.perf_counter()
        exam = load_exam([DUKE_DIR / p for p in DUKE_PHASES])
        timings["load_exam"] = time.perf_counter() - t0
    else:
        from breastlesionseg.phantom import PhantomConfig, generate_phantom

        t0 = time.perf_counter()
        phantom = generate_phantom(PhantomConfig(seed=int(spec["seed"])))
        timings["generate_phantom (not part of segment)"] = time.perf_counter() - t0
        exam, truth = phantom.exam, phantom
    result = engine.run(exam)
    for key, value in result.timings_s.items():
        if key != "total":
            timings[key] = value
    tmp = Path(tempfile.mkdtemp(prefix="bench_segment_"))
    try:
        t0 = time.perf_counter()
        write_outputs(result, exam, tmp / "out", title=spec.get("title", ""))
        timings["write_outputs"] = time.perf_counter() - t0
        if spec.get("overview"):
            Path(spec["overview"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tmp / "out" / "overview.png", spec["overview"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    segment_keys = [k for k in timings if k not in ("generate_phantom (not part of segment)",)]
    out: dict[str, Any] = {
        "spec": spec,
        "device": result.device,
        "inference_backend": result.backend,
        "network": type(engine.model).__name__,
        "parameters": count_parameters(engine.model),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "segment_total_s": round(sum(timings[k] for k in segment_keys), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "peak_gpu_memory_mb": result.peak_gpu_memory_mb,
        "n_windows": result.n_windows,
        "sw_batch_size": result.config.get("sw_batch_size"),  # the batch used (automatic when not given)
        "n_windows_skipped": result.n_windows_skipped,
        "crop_size_xyz": list(result.crop_geometry.size),
        "model_grid_size_xyz": list(result.model_geometry.size),
        "n_lesions": result.n_lesions,
        "lesion_volumes_mm3": [round(v, 1) for v in result.lesion_volumes_mm3],
        "act_score": result.act_score,
        "notes": result.notes,
    }
    if spec["kind"] == "duke" and spec["arch"] == "model":
        out["duke_checks"] = duke_checks(result, exam)
        out["lesions"] = [{k: les.get(k) for k in ("name", "side", "volume_ml", "longest_3d_diameter_mm",
                                                   "centroid_lps_mm", "kinetic_curve_type")}
                          for les in result.metrics["lesions"]]
    if truth is not None and spec["arch"] == "model":
        from breastlesionseg.metrics import evaluate_segmentation

        ev = evaluate_segmentation(result.lesion_labels, truth.lesion_labels)
        out["dice_vs_truth"] = ev["dice"]
        out["detection"] = ev["detection"]["counts"]
    return out


def run_child(spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Run :func:`run_case` in a fresh interpreter (clean peak-memory figure)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"spec": spec, "error": proc.stderr.strip().splitlines()[-5:], "wall_s": round(wall, 1)}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = round(wall, 2)
    return result


# ------------------------------------------------------------------------------------------ phantom eval
def phantom_eval(model: str, device: str, seeds: list[int], threads: int | None,
                 overlap: float | None = None, on_row=None) -> dict[str, Any]:
    """Segment held-out phantoms with ``model``; lesion Dice, detection of lesions >= 20 mm3, FP per exam.

    Per exam: voxel Dice of all lesions together (exams without true lesions are excluded from the mean
    Dice), lesion-wise matching by shared voxels (``evaluate_segmentation``); a "detected" large lesion
    is a true lesion >= 20 mm3 matched by a predicted one; false positives are predicted lesions matching
    no true lesion.
    """
    import numpy as np

    from breastlesionseg.metrics import evaluate_segmentation
    from breastlesionseg.phantom import PhantomConfig, generate_phantom

    engine = engine_for("model", model, device, overlap, threads)
    rows = []
    for seed in seeds:
        phantom = generate_phantom(PhantomConfig(seed=seed))
        t0 = time.perf_counter()
        result = engine.run(phantom.exam)
        seconds = time.perf_counter() - t0
        ev = evaluate_segmentation(result.lesion_labels, phantom.lesion_labels)
        ref = ev["detection"]["reference_lesions"]
        large = [r for r in ref if r["volume_mm3"] >= 20.0]
        row = {
            "seed": seed,
            "true_lesions": len(phantom.lesions),
            "true_volumes_mm3": [round(les["volume_mm3"], 1) for les in phantom.lesions],
            "found": result.n_lesions,
            "dice": ev["dice"],
            "tp": ev["detection"]["counts"]["tp"],
            "fn": ev["detection"]["counts"]["fn"],
            "fp": ev["detection"]["counts"]["fp"],
            "large_true": len(large),
            "large_detected": sum(1 for r in large if r["detected"]),
            "act_score": result.act_score,
            "seconds": round(seconds, 2),
        }
        rows.append(row)
        log.info("phantom %d: %s", seed, row)
        if on_row is not None:
            on_row(rows)
    with_lesions = [r for r in rows if r["true_lesions"] > 0 and r["dice"] is not None]
    large_true = sum(r["large_true"] for r in rows)
    large_found = sum(r["large_detected"] for r in rows)
    summary = {
        "seeds": seeds,
        "mean_lesion_dice": float(np.mean([r["dice"] for r in with_lesions])) if with_lesions else None,
        "exams_with_lesions": len(with_lesions),
        "lesions_ge_20mm3": large_true,
        "lesions_ge_20mm3_detected": large_found,
        "all_lesions_ge_20mm3_detected": large_found == large_true,
        "false_positives_per_exam": float(np.mean([r["fp"] for r in rows])) if rows else None,
        "mean_seconds_per_exam": float(np.mean([r["seconds"] for r in rows])) if rows else None,
        "targets": {"mean_lesion_dice": ">= 0.80", "lesions_ge_20mm3": "all detected",
                    "false_positives_per_exam": "<= 1"},
        "per_exam": rows,
    }
    return summary


# ------------------------------------------------------------------------------------------ A/B of two checkouts
def run_cli_case(repo: Path, backend: str, threads: int, timeout_s: float, keep: Path | None = None) -> dict[str, Any]:
    """``breastlesionseg segment`` on the Duke exam as a user runs it, from the checkout ``repo``.

    Measures the process wall time, the time from process start to the first progress line
    (``--progress json``), the step timings the command writes into ``metrics.json``, the backend
    preparation time (its DEBUG line) and the peak RSS (``/usr/bin/time``).
    """
    out_root = Path(tempfile.mkdtemp(prefix="bench_ab_"))
    out = keep.resolve() if keep is not None else out_root / "out"
    cmd = ["/usr/bin/time", "-f", "BLS_MAXRSS_KB %M", sys.executable, "-m", "breastlesionseg.cli.main", "-v",
           "segment", *[str(DUKE_DIR / p) for p in DUKE_PHASES], "--output", str(out), "--progress", "json",
           "--threads", str(threads), "--backend", backend, "--force"] + (["--save-probability"] if keep else [])
    env = {**os.environ, "PYTHONPATH": str(repo / "BreastLesionSeg"), "OMP_NUM_THREADS": str(threads)}
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=repo)
        first = proc.stdout.readline()
        first_s = time.perf_counter() - t0
        _, err = proc.communicate(timeout=timeout_s)
        wall = time.perf_counter() - t0
        record: dict[str, Any] = {"repo": str(repo), "backend_requested": backend, "exit": proc.returncode,
                                  "first_progress_line_s": round(first_s, 3) if first else None,
                                  "process_wall_s": round(wall, 3), "load_average_1min": os.getloadavg()[0]}
        for line in err.splitlines():
            if line.startswith("BLS_MAXRSS_KB"):
                record["peak_rss_mb"] = round(int(line.split()[1]) / 1024.0, 1)
            if "prepared in" in line and "backend" in line:
                record["backend_prepare_s"] = float(line.rsplit("prepared in", 1)[1].split()[0])
        metrics_path = out / "metrics.json"
        if proc.returncode == 0 and metrics_path.is_file():
            doc = json.loads(metrics_path.read_text(encoding="utf-8"))
            record["timings_s"] = doc.get("timings_s")
            record["inference_backend"] = str(doc.get("inference_backend", "")).split(" (")[0]
        else:
            record["error"] = err.strip().splitlines()[-5:]
        return record
    finally:
        import shutil

        shutil.rmtree(out_root, ignore_errors=True)


def help_seconds(repo: Path, repeats: int = 3) -> float:
    """Median wall time of ``breastlesionseg --help`` from the checkout ``repo``."""
    env = {**os.environ, "PYTHONPATH": str(repo / "BreastLesionSeg")}
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "breastlesionseg.cli.main", "--help"], capture_output=True, env=env,
                       check=True, cwd=repo)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def ab_checkouts(baseline: Path, pairs: int, threads: int, timeout_s: float, competing_load: int,
                 keep_dir: Path | None, on_case=None, eager_arm: bool = True) -> dict[str, Any]:
    """Interleaved A/B: ``segment`` on Duke from ``baseline`` (auto backend) vs this checkout (auto and eager).

    The arms rotate every round so that no arm always runs first; with ``competing_load`` > 0 that many
    busy-looping processes share the CPUs for the whole run (a workstation that is not idle).
    """
    arms = [("baseline", baseline, "auto"), ("this", REPO, "auto")] + ([("this-eager", REPO, "eager")] if eager_arm else [])
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(competing_load)]
    cases: list[dict[str, Any]] = []
    try:
        helps = {name: help_seconds(repo) for name, repo, _ in arms[:2]}
        for k in range(pairs):
            order = arms[k % len(arms):] + arms[:k % len(arms)]
            for name, repo, backend in order:
                keep = keep_dir / name if (keep_dir is not None and k == 0) else None
                case = {"arm": name, "round": k, **run_cli_case(repo, backend, threads, timeout_s, keep)}
                log.info("%s", case)
                cases.append(case)
                if on_case is not None:
                    on_case(cases)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return {"baseline": str(baseline), "pairs": pairs, "competing_load_processes": competing_load,
            "help_s_median": helps, "cases": cases, "summary": ab_summary(cases)}


def ab_summary(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Median per arm of the process wall time, first progress line, peak RSS and every step."""
    import statistics

    out: dict[str, Any] = {}
    for arm in sorted({c["arm"] for c in cases}):
        ok = [c for c in cases if c["arm"] == arm and c.get("exit") == 0]
        if not ok:
            continue
        row = {"runs": len(ok), "backend": ok[0].get("inference_backend")}
        for key in ("process_wall_s", "first_progress_line_s", "peak_rss_mb", "backend_prepare_s"):
            values = [c[key] for c in ok if c.get(key) is not None]
            row[key] = round(statistics.median(values), 2) if values else None
        steps = sorted({s for c in ok for s in (c.get("timings_s") or {})})
        row["steps_s"] = {s: round(statistics.median([(c.get("timings_s") or {}).get(s, 0.0) for c in ok]), 2)
                          for s in steps}
        out[arm] = row
    return out


def ab_table(results: list[tuple[str, dict[str, Any]]]) -> str:
    """Markdown table of one or more A/B runs (medians per arm); ``results``: ``[(json name, result)]``."""
    steps = ["load_exam", "breast_region", "backend", "inference", "postprocess", "total"]
    lines = ["| run | arm | backend | runs | process s | first progress line s | backend prepared s | "
             + " | ".join(f"{s} s" for s in steps) + " | peak RSS MiB | `--help` s |",
             "|" + "---|" * (len(steps) + 9)]
    for name, result in results:
        cases = result.get("cases", [])
        load = [c["load_average_1min"] for c in cases if c.get("load_average_1min") is not None]
        label = (f"{name}: {result['pairs']} rounds, load average {min(load):.0f}-{max(load):.0f}"
                 + (f", +{result['competing_load_processes']} busy processes" if result["competing_load_processes"]
                    else "") if load else name)
        for arm, row in result["summary"].items():
            help_s = result.get("help_s_median", {}).get(arm)
            lines.append(f"| {label} | {arm} | {row['backend']} | {row['runs']} | {row['process_wall_s']} | "
                         f"{row['first_progress_line_s']} | {row['backend_prepare_s']} | "
                         + " | ".join(str(row["steps_s"].get(s, "-")) for s in steps)
                         + f" | {row['peak_rss_mb']} | {'-' if help_s is None else round(help_s, 2)} |")
    return "\n".join(lines) + "\n"


def write_table_into(path: Path, table: str, marker: str = "bench-segment-ab") -> None:
    """Replace the text between ``<!-- MARKER:start -->`` and ``<!-- MARKER:end -->`` in ``path``."""
    text = path.read_text(encoding="utf-8")
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"{path}: no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{table}{end}{tail}", encoding="utf-8")


def print_ab(result: dict[str, Any]) -> None:
    """The A/B as a markdown table (medians per arm)."""
    print(ab_table([("this run", result)]))


# ------------------------------------------------------------------------------------------ report
def print_table(cases: list[dict[str, Any]]) -> None:
    steps = ["load_exam", "breast_region", "crop", "resample", "channels", "backend", "inference", "postprocess",
             "metrics", "write_outputs"]
    header = f"{'case':<22}{'device':<10}{'network':<11}" + "".join(f"{s[:9]:>10}" for s in steps) + \
        f"{'total s':>9}{'peak MiB':>10}{'windows':>8}  backend"
    print(header)
    for c in cases:
        spec = c["spec"]
        name = "duke" if spec["kind"] == "duke" else f"phantom {spec.get('seed')}"
        name += f" b{spec.get('sw_batch_size') or 'auto'}" + (" torch-kept" if spec.get("keep_torch_threads") else "")
        if "error" in c:
            print(f"{name:<22}{spec['device']:<10}{spec['arch']:<11} ERROR {c['error']}")
            continue
        t = c["timings_s"]
        print(f"{name:<22}{c['device'][:9]:<10}{c['network'][:10]:<11}"
              + "".join(f"{t.get(s, float('nan')):>10.2f}" for s in steps)
              + f"{c['segment_total_s']:>9.1f}{c['peak_rss_mb']:>10.0f}{c['n_windows']:>8}  "
              + str(c.get("inference_backend", "?")).split(" ")[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mm3dunet-phantom-demo", help="model id or folder")
    parser.add_argument("--devices", default="auto", help="'auto' (cpu + cuda when present), 'cpu' or 'cuda'")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--overlap", type=float, default=None, help="sliding-window overlap (default: model card)")
    parser.add_argument("--phantom-seeds", type=int, nargs="*", default=[0, 1], help="phantoms to time")
    parser.add_argument("--no-duke", action="store_true", help="skip the Duke exam")
    parser.add_argument("--no-basicunet", action="store_true", help="skip the BasicUNet comparison")
    parser.add_argument("--phantom-eval", type=int, default=0, metavar="N",
                        help="also evaluate held-out phantom seeds 0..N-1 (acceptance: 20)")
    parser.add_argument("--overview", default=None, help="copy the Duke overview.png here (e.g. docs/images/overview_duke.png)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    parser.add_argument("--output", default=None, help="JSON path (default benchmarks/output/bench_segment_<time>.json)")
    parser.add_argument("--backend", default="auto", help="inference backend (default auto: the engine's choice)")
    parser.add_argument("--sw-batch-size", type=int, nargs="+", default=[0], metavar="B",
                        help="sliding windows per forward pass; several values time each (default 0: the "
                             "engine's automatic batch, 1 on CPU and up to 16 on CUDA)")
    parser.add_argument("--blending-threads-ab", type=int, default=0, metavar="N",
                        help="instead of the usual cases: N interleaved pairs of Duke runs with PyTorch dropped to one "
                             "thread while the runtime runs the windows (the default) and with PyTorch's threads kept")
    parser.add_argument("--ab", default=None, metavar="BASELINE_REPO",
                        help="instead of the usual cases: interleaved A/B of 'segment' on Duke (as the CLI runs it) "
                             "between the checkout BASELINE_REPO and this one (auto and eager backends)")
    parser.add_argument("--ab-rounds", type=int, default=3, help="rounds of the A/B (each runs every arm once)")
    parser.add_argument("--ab-no-eager", action="store_true", help="with --ab: leave out this checkout's eager arm")
    parser.add_argument("--competing-load", type=int, default=0, metavar="N",
                        help="with --ab: N busy-looping processes compete for the CPUs during the whole A/B")
    parser.add_argument("--keep-probabilities", default=None, metavar="DIR",
                        help="with --ab: keep each arm's first output folder (with probability.nii.gz) under DIR")
    parser.add_argument("--ab-report", nargs="+", default=None, metavar="JSON",
                        help="instead of running: the table of finished --ab runs (JSON files), printed and, with "
                             "--table-into, written between the bench-segment-ab markers of those files")
    parser.add_argument("--table-into", nargs="*", default=[], metavar="FILE",
                        help="with --ab-report: markdown files to update (e.g. README.md docs/performance.md)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.child:
        print(json.dumps(run_case(json.loads(args.child)), default=float))
        return 0

    if args.ab_report:
        docs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.ab_report]
        results = [(f"run {k + 1} ({d.get('date_utc', '?')[:10]})", d) for k, d in enumerate(docs)]
        table = ab_table(results)
        print(table)
        for target in args.table_into:
            write_table_into(Path(target), "\n`python benchmarks/bench_segment.py --ab ...`, then `--ab-report` "
                             "(the JSON stays in the git-ignored benchmarks/output/):\n\n" + table + "\n")
        return 0
    if args.ab:
        return main_ab(args)

    import torch

    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" else [args.devices]
    report: dict[str, Any] = {
        "benchmark": "bench_segment",
        "date_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "machine": machine_info(),
        "model": args.model,
        "threads": args.threads,
        "targets": {"duke_segment_cpu_2_cores_s": 30.0, "duke_segment_h100_s": 3.0, "duke_peak_memory_cpu_gb": 4.0},
        "cases": [],
    }
    archs = ["model"] + ([] if args.no_basicunet else ["basicunet"])
    specs = []
    for device in devices:
        for arch in archs:
            for k, batch in enumerate(args.sw_batch_size):
                common = {"arch": arch, "device": device, "model": args.model, "overlap": args.overlap,
                          "threads": args.threads, "backend": args.backend, "sw_batch_size": batch}
                if not args.no_duke and (DUKE_DIR / DUKE_PHASES[0]).is_file():
                    specs.append({"kind": "duke", **common,
                                  "overview": args.overview if (arch == "model" and device == "cpu" and k == 0) else None,
                                  "title": "Duke Breast_MRI_153"})
                for seed in args.phantom_seeds:
                    specs.append({"kind": "phantom", "seed": seed, **common})
    if args.blending_threads_ab:
        common = {"kind": "duke", "arch": "model", "device": "cpu", "model": args.model, "overlap": args.overlap,
                  "threads": args.threads, "backend": args.backend, "overview": None, "title": "Duke Breast_MRI_153"}
        specs = [{**common, "keep_torch_threads": keep} for _ in range(args.blending_threads_ab) for keep in (True, False)]
    out = Path(args.output) if args.output else REPO / "benchmarks" / "output" / (
        "bench_segment_" + _dt.datetime.now().strftime("%Y%m%dT%H%M%S") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every case, so an interrupted run keeps what it measured
        out.write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")

    for spec in specs:
        log.info("case %s", spec)
        report["cases"].append(run_child(spec, args.timeout))
        save()
    if args.phantom_eval:
        report["phantom_eval"] = phantom_eval(args.model, devices[0], list(range(args.phantom_eval)), args.threads,
                                              args.overlap, on_row=lambda rows: (report.update(
                                                  {"phantom_eval_partial": rows}), save()))
        report.pop("phantom_eval_partial", None)
    save()
    print_table(report["cases"])
    for c in report["cases"]:
        if "duke_checks" in c:
            print("Duke:", json.dumps({k: c[k] for k in ("n_lesions", "lesion_volumes_mm3", "act_score")}),
                  json.dumps(c["duke_checks"]))
    if "phantom_eval" in report:
        pe = {k: v for k, v in report["phantom_eval"].items() if k != "per_exam"}
        print("phantom eval:", json.dumps(pe))
    print(f"written {out}")
    return 0


def main_ab(args: argparse.Namespace) -> int:
    """``--ab``: run the interleaved A/B, save its JSON after every case, print the table."""
    out = Path(args.output) if args.output else REPO / "benchmarks" / "output" / (
        "bench_segment_ab_" + _dt.datetime.now().strftime("%Y%m%dT%H%M%S") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    header = {"benchmark": "bench_segment --ab", "machine": machine_info(), "threads": args.threads,
              "date_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()}

    def save(cases) -> None:
        out.write_text(json.dumps({**header, "partial_cases": cases}, indent=2, default=float) + "\n", encoding="utf-8")

    result = ab_checkouts(Path(args.ab).resolve(), args.ab_rounds, args.threads, args.timeout, args.competing_load,
                          Path(args.keep_probabilities) if args.keep_probabilities else None, on_case=save,
                          eager_arm=not args.ab_no_eager)
    out.write_text(json.dumps({**header, **result}, indent=2, default=float) + "\n", encoding="utf-8")
    print_ab(result)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
