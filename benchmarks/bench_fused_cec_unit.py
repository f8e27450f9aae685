"""Benchmark for issue 8: the most expensive MM-3DUNet CEC unit, fused in C++ vs OpenVINO vs eager PyTorch.

The unit is the network's own :class:`breastlesionseg.nn.cec_unit.CECUnit` (8 -> 96 -> 8 channels, t = 12,
instance norm + LeakyReLU, inverted residual) on a 1 x 8 x 32 x 256 x 256 float32 input: the first encoder
level of MM-3DUNet at the paper's input, the single most expensive unit of the network (53% of OpenVINO's
forward, ``benchmarks/profile_openvino_layers.py``). The fused implementation is the one the
``native_cec`` backend ships (``breastlesionseg/runtime/native/cec_fused.cpp``: expand + norm + depthwise in
one pass writing the depthwise output once to a kept buffer, norm + project in a second). It is built
with ``torch.utils.cpp_extension`` on first use (needs a C++ compiler with OpenMP, ninja and an AVX-512 CPU;
without them the script says so). The earlier stand-alone prototypes it grew from (a "recompute" and a
"store once" variant) are described, with their figures, in docs/performance.md.

Usage::

    .venv/bin/python benchmarks/bench_fused_cec_unit.py [--repeats 3] [--threads 2]

Prints a table (median seconds, useful GFLOP/s with 2 FLOPs per multiply-add, max |diff| against eager)
and the float32 matmul peak, and writes ``benchmarks/output/bench_fused_cec_unit_<UTC>.json``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "BreastLesionSeg"))

from breastlesionseg.nn.cec_unit import CECUnit  # noqa: E402

log = logging.getLogger("bench_fused_cec_unit")
SHAPE = (1, 8, 32, 256, 256)
EXPANSION = 12
#: multiply-adds per voxel: expand 8x96, depthwise 27x96, project 96x8
MACS_PER_VOXEL = 8 * 96 + 27 * 96 + 96 * 8


def _median_s(fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def build_unit(seed: int = 0) -> CECUnit:
    """The network's CEC unit with random weights and random norm affine parameters."""
    torch.manual_seed(seed)
    unit = CECUnit(8, 8, expansion=EXPANSION).eval()
    with torch.no_grad():
        for m in unit.modules():
            if isinstance(m, torch.nn.InstanceNorm3d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return unit


def openvino_runner(unit: CECUnit, x: torch.Tensor, threads: int):
    """A callable running the unit's ONNX export in OpenVINO (f32), or None when OpenVINO is missing."""
    try:
        import openvino as ov
    except ImportError:
        return None, "openvino not installed"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cec.onnx"
        torch.onnx.export(unit, (x[:, :, :4, :16, :16].contiguous(),), str(path), dynamo=False, opset_version=18,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {2: "d", 3: "h", 4: "w"}})
        core = ov.Core()
        model = core.read_model(str(path))
    model.reshape({model.inputs[0].get_any_name(): list(x.shape)})
    compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
                                                 "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    arr = x.numpy()

    def run() -> torch.Tensor:
        request.infer({0: arr})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())

    return run, ""


def build_fused(unit: CECUnit):
    """The shipped fused kernel wrapping ``unit``: ``(callable, "")`` or ``(None, why)`` when it cannot be built."""
    from breastlesionseg.runtime import native_cec

    try:
        kernels = native_cec.native_kernels()
    except (RuntimeError, OSError, ImportError) as exc:  # no compiler / no AVX-512 / build failure
        return None, f"the fused C++ kernel is not available: {type(exc).__name__}: {str(exc)[:300]}"
    fused = native_cec.NativeCEC(unit, kernels, native_cec._Workspace(kernels), keep_output=True)
    if not fused.supported:
        return None, "the shipped kernel has no instantiation for this unit"
    return fused, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "output")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    unit = build_unit()
    x = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(1))
    flops = 2.0 * MACS_PER_VOXEL * int(np.prod(SHAPE[2:]))
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    mm_s, _ = _median_s(lambda: torch.mm(a, b), 5)
    peak = 2.0 * 2048**3 / mm_s / 1e9
    rows = []
    with torch.no_grad():
        ref = unit(x)
        eager_s, eager_all = _median_s(lambda: unit(x), args.repeats)
        rows.append({"implementation": "eager PyTorch (CECUnit)", "seconds": eager_s, "all_s": eager_all,
                     "max_abs_diff": 0.0})
        run_ov, why = openvino_runner(unit, x, args.threads)
        if run_ov is not None:
            ov_s, ov_all = _median_s(run_ov, args.repeats)
            rows.append({"implementation": "OpenVINO (f32)", "seconds": ov_s, "all_s": ov_all,
                         "max_abs_diff": float((run_ov() - ref).abs().max())})
        else:
            rows.append({"implementation": "OpenVINO (f32)", "skipped": why})
        fused, why = build_fused(unit)
        if fused is not None:
            seconds, all_s = _median_s(lambda: fused(x), args.repeats)  # the warm-up allocates the kept buffer
            rows.append({"implementation": "fused C++ (native_cec kernel, buffer kept)", "seconds": seconds,
                         "all_s": all_s, "max_abs_diff": float((fused(x) - ref).abs().max())})
        else:
            rows.append({"implementation": "fused C++ (native_cec kernel)", "skipped": why})
    print(f"CEC unit 8 -> 96 -> 8 at {'x'.join(map(str, SHAPE))}, float32, {args.threads} threads; "
          f"{flops / 1e9:.2f} useful GFLOPs; float32 matmul peak {peak:.1f} GFLOP/s; max |eager| {float(ref.abs().max()):.2f}")
    print("| implementation | median s | useful GFLOP/s | % of matmul peak | max abs diff vs eager |")
    print("|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['implementation']} | n/a: {r['skipped']} | | | |")
            continue
        gf = flops / r["seconds"] / 1e9
        print(f"| {r['implementation']} | {r['seconds']:.3f} | {gf:.1f} | {100 * gf / peak:.1f} | {r['max_abs_diff']:.1e} |")
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = args.output / f"bench_fused_cec_unit_{stamp}.json"
    path.write_text(json.dumps({"shape": SHAPE, "threads": args.threads, "useful_flops": flops,
                                "matmul_peak_gflops": peak, "rows": rows}, indent=2))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
