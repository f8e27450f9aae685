#!/usr/bin/env python
"""Benchmark the lesion networks and inference backends on this machine (CPU; GPU when present).

One run measures, on the same machine:

* forward time (median of ``--repeats`` runs after one warm-up; backends of one model and input
  are interleaved round-robin in this process, so load changes hit them alike; wall and process CPU time),
* achieved GFLOP/s (FLOPs from ``breastlesionseg.nn.count_flops``, 2 FLOPs per multiply-add),
  and the same against the machine's measured peak (a large float32 matmul on the same threads),
* peak memory: one forward pass per configuration in a fresh subprocess; ``peak_rss_delta_bytes``
  is the process's ``VmHWM`` after the forward minus its ``VmRSS`` before it (what inference adds),
* the numerical difference of each backend against eager float32 (max |logit difference|),
* issue 8's speed target (MM-3DUNet t=12+ACT against the dense baseline, each on its fastest exact
  backend): from the table's medians, and again in ``--head-to-head`` alternating forward passes of the
  two, whose per-pair ratio is immune to the machine's drift between the two models' table rows,

for MM-3DUNet t=6, t=12, t=12+ACT, the dense 3D U-Net baseline (Wang et al. 2025 Table 1 configurations)
and MONAI's BasicUNet, at the paper's input (1 x 1 x 32 x 256 x 256) and at the pipeline's window
(1 x C x patch from the demo model card, else the ModelCard default), for each backend; optionally
the whole ``breastlesionseg segment`` on the Duke exam (``--segment``).

Writes ``benchmarks/output/bench_networks_<UTC time>.json`` and prints a markdown table.

Usage::

    .venv/bin/python benchmarks/bench_networks.py            # full run (long on 2 cores)
    .venv/bin/python benchmarks/bench_networks.py --quick    # smoke test: tiny inputs, 1 repeat
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "BreastLesionSeg"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_flags, cpu_model  # noqa: E402

from breastlesionseg.nn import MM3DUNet, MM3DUNetConfig, UNet3D, UNet3DConfig, count_flops, count_parameters  # noqa: E402
from breastlesionseg.runtime import BACKENDS  # noqa: E402
from breastlesionseg.runtime.backend import forward_with_aux  # noqa: E402
from breastlesionseg.runtime.memory import current_rss_bytes, peak_rss_bytes  # noqa: E402

log = logging.getLogger("bench_networks")

#: models benchmarked: name -> (builder kwargs description)
MODELS: Tuple[str, ...] = ("mm3dunet_t6", "mm3dunet_t12", "mm3dunet_t12_act", "unet3d_table1", "monai_basicunet")
#: backends tried per model (those that do not support a model are reported as such)
BACKEND_NAMES: Tuple[str, ...] = BACKENDS  # the package's backends (runtime.names)
PAPER_INPUT: Tuple[int, int, int] = (32, 256, 256)
DUKE_GLOB = "Breast_MRI_153_000[0-4]_*.nii.gz"


def build_model(name: str, in_channels: int) -> torch.nn.Module:
    """The benchmarked network ``name`` with ``in_channels`` inputs (seeded random weights, eval mode)."""
    torch.manual_seed(0)
    if name == "mm3dunet_t6":
        net = MM3DUNet(MM3DUNetConfig(in_channels=in_channels, expansion=6, act=False))
    elif name == "mm3dunet_t12":
        net = MM3DUNet(MM3DUNetConfig(in_channels=in_channels, expansion=12, act=False))
    elif name == "mm3dunet_t12_act":
        net = MM3DUNet(MM3DUNetConfig(in_channels=in_channels, expansion=12, act=True))
    elif name == "unet3d_table1":
        net = UNet3D(UNet3DConfig.table1(in_channels=in_channels))
    elif name == "monai_basicunet":
        from monai.networks.nets import BasicUNet

        net = BasicUNet(spatial_dims=3, in_channels=in_channels, out_channels=1)
    else:
        raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")
    # non-trivial norm affines so that folded/fused paths are really exercised
    for m in net.modules():
        if isinstance(m, (torch.nn.InstanceNorm3d, torch.nn.BatchNorm3d)) and m.weight is not None:
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def pipeline_window() -> Tuple[Tuple[int, int, int], int, str]:
    """(window D, H, W), input channels and where they came from: the demo model card, else the ModelCard default.

    The window is the card's ``inference_window`` (what the sliding window really feeds the network).
    """
    from breastlesionseg.errors import BreastLesionSegError
    from breastlesionseg.nn import resolve_model
    from breastlesionseg.nn.model_card import ModelCard

    try:
        folder = resolve_model("mm3dunet-phantom-demo")
        card = ModelCard.read(Path(folder) / "model_card.json")
        window = card.inference_window or card.patch_size
        return tuple(int(s) for s in window), len(card.input_channels), f"model card {folder}"
    except (BreastLesionSegError, OSError, ValueError) as exc:
        log.warning("demo model card not usable (%s); using the ModelCard default patch", exc)
    default = ModelCard.__dataclass_fields__["patch_size"].default
    return tuple(int(s) for s in default), 3, "ModelCard default (no demo model)"


def machine_info(threads: int) -> Dict[str, Any]:
    """CPU model, cores, threads, torch/ORT versions, GPU, load average."""
    cpu = cpu_model(default="?")
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    try:
        import openvino

        ov_version = openvino.__version__
    except ImportError:
        ov_version = None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu_model": cpu, "cpu_count": os.cpu_count(), "threads": threads,
        "avx512_bf16": "avx512_bf16" in cpu_flags(), "torch": torch.__version__, "onnxruntime": ort_version,
        "openvino": ov_version, "python": platform.python_version(), "gpu": gpu or "none (not measured: no GPU in this session)",
        "load_average_start": list(os.getloadavg()),
    }


def matmul_peak_gflops(n: int, repeats: int = 5) -> float:
    """Achieved float32 GFLOP/s of an n x n matmul on the current threads (best of ``repeats``)."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def _max_abs_vs_eager(net: torch.nn.Module, runnable: torch.nn.Module, shape: Sequence[int]) -> float:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        a, _ = forward_with_aux(net, x)
        b, _ = forward_with_aux(runnable, x)
    return float((a.float() - b.float()).abs().max())


def _prepare(backend_name: str, net: torch.nn.Module, shape: Sequence[int]) -> Tuple[Optional[torch.nn.Module], str]:
    """The network as ``backend_name`` runs it; OpenVINO gets a fresh ONNX export in a temporary folder
    (the package reads the one stored in the model folder; a benchmark network has none)."""
    import tempfile

    from breastlesionseg.errors import BackendUnavailableError
    from breastlesionseg.nn.export import export_onnx
    from breastlesionseg.runtime.backend import network_has_act
    from breastlesionseg.runtime.eager import EagerBackend
    from breastlesionseg.runtime.openvino_backend import compile_onnx

    if backend_name == "eager":
        return EagerBackend().prepare(net, shape), ""
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ov-") as tmp:
            path = export_onnx(net, Path(tmp) / "model.onnx")
            return compile_onnx(path, net.in_channels, net.out_channels, network_has_act(net), None, shape), ""
    except BackendUnavailableError as exc:
        return None, str(exc)


def memory_worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Subprocess body: build, prepare, one forward; report RSS figures (bytes)."""
    torch.set_num_threads(int(spec["threads"]))
    net = build_model(spec["model"], int(spec["shape"][1]))
    runnable, why = _prepare(spec["backend"], net, spec["shape"])
    if runnable is None:
        return {"skipped": why}
    x = torch.randn(*spec["shape"])
    before = current_rss_bytes()
    t0 = time.perf_counter()
    with torch.no_grad():
        forward_with_aux(runnable, x)
    wall = time.perf_counter() - t0
    peak = peak_rss_bytes()
    return {"rss_before_forward_bytes": before, "peak_rss_bytes": peak,
            "peak_rss_delta_bytes": (peak - before) if (peak is not None and before is not None) else None,
            "single_forward_s": wall}


def measure_memory(spec: Dict[str, Any], timeout_s: float) -> Dict[str, Any]:
    """Run :func:`memory_worker` in a fresh interpreter (so each peak is its own)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}"}
    return json.loads(lines[-1])


def bench_config(model: str, shape: Tuple[int, ...], backends: Sequence[str], repeats: int, threads: int,
                 memory: bool, memory_timeout_s: float) -> List[Dict[str, Any]]:
    """Time every backend of one (model, input shape), interleaved; returns one record per backend."""
    net = build_model(model, shape[1])
    flops = count_flops(net, shape)
    params = count_parameters(net)
    small = (1, shape[1], 35, 37, 33)  # odd, and deep enough for a 5-level U-Net's bottleneck
    prepared: Dict[str, torch.nn.Module] = {}
    records: Dict[str, Dict[str, Any]] = {}
    for name in backends:
        rec: Dict[str, Any] = {"model": model, "input_shape": list(shape), "backend": name, "params": params,
                               "flops": flops}
        records[name] = rec
        try:
            t0 = time.perf_counter()
            runnable, why = _prepare(name, net, shape)
            rec["prepare_s"] = time.perf_counter() - t0
        except (RuntimeError, ValueError, ImportError, OSError) as exc:
            runnable, why = None, f"{type(exc).__name__}: {exc}"
        if runnable is None:
            rec["skipped"] = why
            continue
        try:
            rec["max_abs_vs_eager_small"] = _max_abs_vs_eager(net, runnable, small)
        except (RuntimeError, ValueError) as exc:
            rec["skipped"] = f"failed on the small validation input: {type(exc).__name__}: {exc}"
            continue
        prepared[name] = runnable
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    walls: Dict[str, List[float]] = {n: [] for n in prepared}
    cpus: Dict[str, List[float]] = {n: [] for n in prepared}
    outputs: Dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, runnable in prepared.items():  # warm-up (and the output for the big-input comparison)
            seg, _ = forward_with_aux(runnable, x)
            outputs[name] = seg
        for _ in range(repeats):
            for name, runnable in prepared.items():
                c0, t0 = time.process_time(), time.perf_counter()
                forward_with_aux(runnable, x)
                walls[name].append(time.perf_counter() - t0)
                cpus[name].append(time.process_time() - c0)
    ref = outputs.get("eager")
    for name in prepared:
        rec = records[name]
        med = statistics.median(walls[name])
        rec.update({"forward_s_median": med, "forward_s_min": min(walls[name]), "forward_s_all": walls[name],
                    "cpu_s_median": statistics.median(cpus[name]), "achieved_gflops": flops / med / 1e9})
        if ref is not None:
            rec["max_abs_vs_eager"] = float((outputs[name].float() - ref.float()).abs().max())
            rec["max_abs_eager_logit"] = float(ref.abs().max())
    if "eager" in prepared:
        for name in prepared:
            records[name]["speedup_vs_eager"] = records["eager"]["forward_s_median"] / records[name]["forward_s_median"]
    del prepared, outputs
    if memory:
        for name, rec in records.items():
            if "skipped" in rec:
                continue
            rec["memory"] = measure_memory({"model": model, "shape": list(shape), "backend": name, "threads": threads},
                                           memory_timeout_s)
    return list(records.values())


def bench_segment(threads: int, timeout_s: float) -> Dict[str, Any]:
    """Time ``breastlesionseg segment`` on the five-phase Duke exam (if the data and a model exist)."""
    data = Path(os.environ.get("BLS_SHARED_DATA", REPO.parent / "shared" / "data")) / "duke-breast-mri-153"
    phases = sorted(data.glob(DUKE_GLOB))
    if len(phases) != 5:
        return {"skipped": f"Duke exam not found at {data}"}
    exe = Path(sys.executable).with_name("breastlesionseg")
    if not exe.is_file():
        return {"skipped": f"CLI {exe} not found"}
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bls-bench-seg-") as tmp:
        out = Path(tmp) / "out"
        cmd = [str(exe), "segment", *map(str, phases), "--output", str(out), "--device", "cpu"]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout_s:.0f} s", "command": cmd}
        wall = time.perf_counter() - t0
        result: Dict[str, Any] = {"command": " ".join(cmd), "exit_code": proc.returncode, "wall_s": wall}
        if proc.returncode != 0:
            result["error"] = proc.stderr.strip()[-600:]
            return result
        metrics = out / "metrics.json"
        if metrics.is_file():
            data_m = json.loads(metrics.read_text(encoding="utf-8"))
            for key in ("timings_s", "device", "backend", "inference_backend"):
                if key in data_m:
                    result[key] = data_m[key]
        return result


def segment_worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Subprocess body: the inference engine on the Duke exam with one backend; timings and peak RSS."""
    from breastlesionseg.exam import load_exam
    from breastlesionseg.inference import InferenceConfig, SegmentationEngine
    from breastlesionseg.nn import load_model
    from breastlesionseg.runtime import select_backend

    torch.set_num_threads(int(spec["threads"]))
    t0 = time.perf_counter()
    exam = load_exam([Path(p) for p in spec["phases"]])
    t_load = time.perf_counter() - t0
    model, card = load_model(spec["model"], device="cpu")
    t1 = time.perf_counter()
    from breastlesionseg.nn.registry import resolve_model

    selection = select_backend(model, "cpu", tuple(card.patch_size), preference=spec["backend"],
                               model_dir=resolve_model(spec["model"]), card=card)
    t_select = time.perf_counter() - t1
    config = InferenceConfig(model=str(spec["model"]), device="cpu", num_threads=int(spec["threads"]))
    engine = SegmentationEngine(config, model=selection.network, card=card)
    rss_before = current_rss_bytes()
    t2 = time.perf_counter()
    result = engine.run(exam)
    t_run = time.perf_counter() - t2
    lesions = getattr(result, "lesion_labels", None)
    n_lesions = None
    lesion_voxels = None
    if lesions is not None:
        arr = lesions.array if hasattr(lesions, "array") else lesions
        import numpy as np

        arr = np.asarray(arr)
        n_lesions = int(arr.max())
        lesion_voxels = int((arr > 0).sum())
    return {"backend": selection.name, "requested_backend": spec["backend"], "load_exam_s": t_load,
            "select_backend_s": t_select, "engine_run_s": t_run, "timings_s": dict(getattr(result, "timings_s", {})),
            "peak_rss_bytes": peak_rss_bytes(), "rss_before_run_bytes": rss_before, "n_lesions": n_lesions,
            "lesion_voxels": lesion_voxels, "act_score": getattr(result, "act_score", None),
            "model": str(spec["model"]), "patch_size": list(card.patch_size),
            "target_spacing_mm": list(card.target_spacing_mm)}


def bench_segment_backends(model: str, backends: Sequence[str], threads: int, timeout_s: float) -> List[Dict[str, Any]]:
    """The engine on the Duke exam once per backend, each in a fresh subprocess (its own peak RSS)."""
    data = Path(os.environ.get("BLS_SHARED_DATA", REPO.parent / "shared" / "data")) / "duke-breast-mri-153"
    phases = sorted(data.glob(DUKE_GLOB))
    if len(phases) != 5:
        return [{"skipped": f"Duke exam not found at {data}"}]
    out = []
    for name in backends:
        spec = {"model": model, "backend": name, "threads": threads, "phases": [str(p) for p in phases]}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--segment-worker", json.dumps(spec)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            out.append({"requested_backend": name, "error": f"timed out after {timeout_s:.0f} s"})
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            out.append({"requested_backend": name, "error": f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}"})
            continue
        rec = json.loads(lines[-1])
        rec["process_wall_s"] = time.perf_counter() - t0
        out.append(rec)
    return out


def speed_targets(records: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Issue 8's CPU target per input: MM-3DUNet t=12+ACT vs the dense baseline, each on its fastest exact backend.

    Returns one record per input with both times, the backends, and ``dense_over_mm`` (target >= 2).
    Reduced-precision backends (bf16) are left out: the comparison is at float32 accuracy.
    """
    out = []
    for label in sorted({r.get("input", "?") for r in records}):
        best: Dict[str, Dict[str, Any]] = {}
        for r in records:
            if r.get("input") != label or "forward_s_median" not in r or r["backend"] not in BACKENDS:
                continue
            if r["model"] not in best or r["forward_s_median"] < best[r["model"]]["forward_s_median"]:
                best[r["model"]] = r
        mm, dense = best.get("mm3dunet_t12_act"), best.get("unet3d_table1")
        if mm and dense:
            ratio = dense["forward_s_median"] / mm["forward_s_median"]
            out.append({"input": label, "input_shape": mm["input_shape"],
                        "mm3dunet_t12_act_s": mm["forward_s_median"], "mm3dunet_backend": mm["backend"],
                        "dense_s": dense["forward_s_median"], "dense_backend": dense["backend"],
                        "dense_over_mm": ratio, "target": ">= 2 (MM-3DUNet at least 2x faster)",
                        "met": bool(ratio >= 2.0)})
    return out


def interleaved_ratio(run_fast: Callable[[], Any], run_slow: Callable[[], Any], pairs: int,
                      clock: Callable[[], float] = time.perf_counter) -> Dict[str, Any]:
    """Time ``pairs`` back-to-back (fast, slow) runs, alternating which goes first; per pair, slow / fast.

    On a shared VM the speed drifts by tens of percent within minutes, so two medians taken minutes apart
    (the per-configuration table) can disagree by more than the effect measured. Each pair here is
    measured within about a second, so a drift moves both sides alike. Both callables are warmed up once.

    Returns:
        ``{"pairs", "fast_s_median", "slow_s_median", "ratio_median", "ratio_min", "ratio_max", "ratios"}``.
    """
    if pairs < 1:
        raise ValueError(f"pairs must be >= 1; got {pairs}")
    run_fast()
    run_slow()
    fast, slow = [], []
    for i in range(pairs):
        for which in ((run_fast, fast), (run_slow, slow)) if i % 2 == 0 else ((run_slow, slow), (run_fast, fast)):
            t0 = clock()
            which[0]()
            which[1].append(clock() - t0)
    ratios = [b / a for a, b in zip(fast, slow)]
    return {"pairs": pairs, "fast_s_median": statistics.median(fast), "slow_s_median": statistics.median(slow),
            "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "ratios": ratios}


def head_to_head(target: Dict[str, Any], threads: int, pairs: int) -> Dict[str, Any]:
    """Issue 8's comparison of one speed target again, interleaved (:func:`interleaved_ratio`): MM-3DUNet t=12+ACT
    on its fastest backend against the dense baseline on its own, same input, alternating forward passes."""
    shape = tuple(target["input_shape"])
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    mm_net, dense_net = build_model("mm3dunet_t12_act", shape[1]), build_model("unet3d_table1", shape[1])
    mm, why_mm = _prepare(target["mm3dunet_backend"], mm_net, shape)
    dense, why_dense = _prepare(target["dense_backend"], dense_net, shape)
    if mm is None or dense is None:
        return {"skipped": why_mm or why_dense}
    with torch.no_grad():
        out = interleaved_ratio(lambda: forward_with_aux(mm, x), lambda: forward_with_aux(dense, x), pairs)
    out["met"] = bool(out["ratio_median"] >= 2.0)
    return out


def markdown_table(result: Dict[str, Any]) -> str:
    """The per-configuration table of a benchmark result."""
    m = result["machine"]
    peak = result["matmul_peak_gflops"]
    lines = [
        f"Machine: {m['cpu_model']}, {m['cpu_count']} cores, {m['threads']} threads, torch {m['torch']}, "
        f"onnxruntime {m['onnxruntime']}, openvino {m.get('openvino')}, GPU {m['gpu']}; load average {m['load_average_start']} -> "
        f"{result['load_average_end']}; float32 matmul peak {peak:.1f} GFLOP/s.",
        "",
        "| model | input | backend | GFLOPs | forward s (median) | CPU s | GFLOP/s | % of matmul peak | x eager | "
        "max abs diff vs eager | peak RSS delta MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["results"]:
        shape = "x".join(str(s) for s in r["input_shape"])
        if "skipped" in r:
            lines.append(f"| {r['model']} | {shape} | {r['backend']} | {r['flops'] / 1e9:.2f} | n/a: {r['skipped'][:60]} "
                         "| | | | | | |")
            continue
        mem = r.get("memory", {}).get("peak_rss_delta_bytes")
        mem_s = f"{mem / 2**20:.0f}" if mem else r.get("memory", {}).get("error", "")[:40]
        lines.append(
            f"| {r['model']} | {shape} | {r['backend']} | {r['flops'] / 1e9:.2f} | {r['forward_s_median']:.3f} | "
            f"{r['cpu_s_median']:.2f} | {r['achieved_gflops']:.1f} | {100 * r['achieved_gflops'] / peak:.1f} | "
            f"{r.get('speedup_vs_eager', float('nan')):.2f} | {r.get('max_abs_vs_eager', float('nan')):.1e} | {mem_s} |"
        )
    for t in result.get("speed_targets", []):
        lines.append(f"\nTarget ({t['input']}, {'x'.join(map(str, t['input_shape']))}): MM-3DUNet t=12+ACT "
                     f"{t['mm3dunet_t12_act_s']:.3f} s ({t['mm3dunet_backend']}) vs dense {t['dense_s']:.3f} s "
                     f"({t['dense_backend']}): dense/MM = {t['dense_over_mm']:.2f}, target >= 2: "
                     f"{'met' if t['met'] else 'NOT met'}")
        hh = t.get("interleaved")
        if hh and "ratio_median" in hh:
            lines.append(f"  interleaved, {hh['pairs']} alternating pairs: MM {hh['fast_s_median']:.3f} s vs dense "
                         f"{hh['slow_s_median']:.3f} s; dense/MM per pair median {hh['ratio_median']:.2f} "
                         f"(range {hh['ratio_min']:.2f}-{hh['ratio_max']:.2f}): {'met' if hh['met'] else 'NOT met'}")
        elif hh:
            lines.append(f"  interleaved: n/a ({hh.get('skipped', '')[:80]})")
    seg = result.get("segment")
    if seg:
        lines.append("")
        lines.append("Whole `breastlesionseg segment` CLI on the Duke exam: " + json.dumps(seg)[:600])
    eng = result.get("segment_engine")
    if eng:
        lines += ["", "| engine on Duke exam: backend | load exam s | engine run s | inference step s | peak RSS MB | lesions |",
                  "|---|---|---|---|---|---|"]
        for r in eng:
            if "error" in r or "skipped" in r:
                lines.append(f"| {r.get('requested_backend', '?')} | {r.get('error', r.get('skipped'))[:80]} | | | | |")
                continue
            lines.append(f"| {r['backend']} | {r['load_exam_s']:.1f} | {r['engine_run_s']:.1f} | "
                         f"{r['timings_s'].get('inference', float('nan')):.1f} | {r['peak_rss_bytes'] / 2**20:.0f} | "
                         f"{r['n_lesions']} ({r['lesion_voxels']} voxels) |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny inputs, 1 repeat, two models")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per configuration (default 3; quick 1)")
    parser.add_argument("--models", default=None, help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--backends", default=None, help=f"comma-separated subset of {','.join(BACKEND_NAMES)}")
    parser.add_argument("--inputs", default="paper,window", help="comma-separated: paper, window (or none)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-configuration memory subprocesses")
    parser.add_argument("--segment", action="store_true", help="also time 'breastlesionseg segment' on the Duke exam")
    parser.add_argument("--segment-model", default=None,
                        help="model folder/name: run the inference engine on the Duke exam once per --segment-backends")
    parser.add_argument("--segment-backends", default=",".join(BACKENDS),
                        help="backends for --segment-model (default: all of the package's)")
    parser.add_argument("--head-to-head", type=int, default=None, metavar="PAIRS",
                        help="after the table, time MM-3DUNet t=12+ACT and the dense baseline (each on its fastest "
                             "backend) in PAIRS alternating forward passes, per speed target (default 2 x repeats; "
                             "0: skip)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "output", help="JSON output folder")
    parser.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--segment-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_worker is not None:
        print(json.dumps(memory_worker(json.loads(args.memory_worker))))
        return 0
    if args.segment_worker is not None:
        print(json.dumps(segment_worker(json.loads(args.segment_worker))))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    torch.set_num_threads(args.threads)
    models = args.models.split(",") if args.models else (
        ["mm3dunet_t12_act", "unet3d_table1"] if args.quick else list(MODELS))
    backends = args.backends.split(",") if args.backends else list(BACKEND_NAMES)
    for name in models:
        if name not in MODELS:
            parser.error(f"--models: unknown model {name!r}; expected some of {MODELS}")
    for name in backends:
        if name not in BACKENDS:
            parser.error(f"--backends: unknown backend {name!r}; expected some of {sorted(BACKENDS)}")
    repeats = args.repeats or (1 if args.quick else 3)
    window, window_channels, window_source = pipeline_window()
    inputs: List[Tuple[str, Tuple[int, ...]]] = []
    for which in [w for w in args.inputs.split(",") if w.strip().lower() != "none"]:
        if which == "paper":
            inputs.append(("paper", (1, 1) + ((16, 32, 32) if args.quick else PAPER_INPUT)))
        elif which == "window":
            inputs.append(("window", (1, window_channels) + ((16, 32, 48) if args.quick else window)))
        else:
            parser.error(f"--inputs: unknown input {which!r}; expected paper and/or window")
    result: Dict[str, Any] = {
        "benchmark": "bench_networks", "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": bool(args.quick), "repeats": repeats, "machine": machine_info(args.threads),
        "inputs": {k: list(v) for k, v in inputs}, "window_source": window_source,
    }
    result["matmul_peak_gflops"] = matmul_peak_gflops(512 if args.quick else 2048)
    records: List[Dict[str, Any]] = []
    result["results"] = records
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = args.output / f"bench_networks_{'quick_' if args.quick else ''}{stamp}.json"

    def save() -> None:  # after every configuration, so a long run interrupted keeps what it measured
        tmp = path.with_suffix(".json.part")
        tmp.write_text(json.dumps({**result, "load_average_end": list(os.getloadavg())}, indent=2))
        os.replace(tmp, path)

    for label, shape in inputs:
        for model in models:
            log.warning("benchmarking %s at %s", model, shape)
            t0 = time.perf_counter()
            for rec in bench_config(model, shape, backends, repeats, args.threads, not args.no_memory,
                                    memory_timeout_s=120 if args.quick else 900):
                rec["input"] = label
                if "achieved_gflops" in rec:
                    rec["fraction_of_matmul_peak"] = rec["achieved_gflops"] / result["matmul_peak_gflops"]
                records.append(rec)
            result["speed_targets"] = speed_targets(records)
            save()
            log.warning("  done in %.0f s (load %s)", time.perf_counter() - t0, os.getloadavg())
    pairs = 2 * repeats if args.head_to_head is None else args.head_to_head
    if pairs < 0:
        parser.error(f"--head-to-head must be >= 0; got {pairs}")
    for target in result.get("speed_targets", []) if pairs else []:
        log.warning("interleaved head-to-head at %s: %d pairs", target["input_shape"], pairs)
        target["interleaved"] = head_to_head(target, args.threads, pairs)
        save()
    if args.segment:
        result["segment"] = bench_segment(args.threads, timeout_s=900)
    if args.segment_model:
        result["segment_engine"] = bench_segment_backends(args.segment_model, args.segment_backends.split(","),
                                                          args.threads, timeout_s=900)
    result["load_average_end"] = list(os.getloadavg())
    save()
    print(markdown_table(result))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
