#!/usr/bin/env python
"""Training memory and time per image of the standard and the lightweight high-resolution U-Net.

For each network (``--variants``; default the original 4-level U-Net ``standard4``, the 7-level standard
U-Net ``deep7`` (598 M parameters) and the shipped lightweight ``separable-residual`` (5.35 M), Tardy &
Mateus) and image size (``--sizes``; default 512, 1024, 1536 px, batch 1, one grayscale channel):

1. **estimate** the memory of one Adam training step without running it: parameters + gradients + two
   Adam moments (4 x 4 bytes per parameter) + every tensor autograd saves for the backward pass, counted
   once per storage by ``torch.autograd.graph.saved_tensors_hooks`` during a forward on the ``meta``
   device (no memory, no compute);
2. **measure** it, only when the estimate fits under ``--cap-gib`` (so the run never endangers a shared
   machine): one fresh subprocess per configuration, niced, with ``RLIMIT_AS`` = its address space after
   start-up + the cap, runs one warm-up step (allocates the Adam state), resets the peak resident set
   (``/proc/self/clear_refs``), then ``--steps`` timed steps (forward, BCE loss, backward, Adam); with
   ``--steps 0`` the first step is timed and its peak (including the Adam state's allocation) reported.
   Reported: the peak resident set of the steady-state step minus the process's resident set after start-up
   (``peak_train_gib``), and the median wall time per image. On a GPU (``torch.cuda.is_available()``)
   the same step runs on ``cuda`` and the peak is ``torch.cuda.max_memory_allocated``.

``fits_budget`` compares the measured peak (else the estimate) with ``--budget-gib`` (8 GiB: a mass-market GPU).

Writes ``benchmarks/output/hires_unet_memory_<UTC time>.json`` and prints a markdown table.

Usage::

    .venv/bin/python benchmarks/bench_hires_unet_memory.py           # full run; workers run at niceness 10
    .venv/bin/python benchmarks/bench_hires_unet_memory.py --sizes 64 --variants separable-residual --steps 1
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "BreastLesionSeg"))

from breastlesionseg.nn.hires_unet import HiResUNet2D  # noqa: E402
from breastlesionseg.nn.hires_unet_config import HiResUNetConfig  # noqa: E402
from breastlesionseg.runtime.memory import current_rss_bytes, peak_rss_bytes  # noqa: E402

log = logging.getLogger("bench_hires_unet_memory")
GIB = float(1 << 30)
DEFAULT_VARIANTS = ("standard4", "deep7", "separable-residual")
DEFAULT_SIZES_PX = (512, 1024, 1536)
#: bytes per parameter held by an Adam step: weight, gradient, first and second moment (float32)
ADAM_BYTES_PER_PARAMETER = 16


def estimate_training_bytes(variant: str, size_px: int) -> Dict[str, int]:
    """Analytic memory of one Adam step at batch 1: ``{"params", "state", "saved_activations", "total"}``.

    Raises:
        InputError: unknown variant.
    """
    config = HiResUNetConfig.variant(variant)
    with torch.device("meta"):
        net = HiResUNet2D(config)
        x = torch.empty(1, config.in_channels, size_px, size_px)
    saved: Dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        saved[storage._cdata] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x)
    params = sum(p.numel() for p in net.parameters())
    state = ADAM_BYTES_PER_PARAMETER * params
    activations = sum(saved.values())
    return {"params": params, "state_bytes": state, "saved_activation_bytes": activations,
            "total_bytes": state + activations}


def _limit_address_space(cap_bytes: int) -> None:
    """Cap this process's address space at its current size + ``cap_bytes`` (allocations beyond fail)."""
    with open("/proc/self/status") as fh:
        vm_kib = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:"))
    limit = vm_kib * 1024 + cap_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _reset_peak_rss() -> None:
    """Reset ``VmHWM`` to the current resident set (Linux ``clear_refs`` 5)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def train_step_worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Subprocess body: time and measure ``spec["steps"]`` Adam steps of one variant at one size."""
    torch.set_num_threads(int(spec["threads"]))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    base_rss = current_rss_bytes() or 0
    if device == "cpu":
        _limit_address_space(int(spec["cap_gib"] * GIB))
    torch.manual_seed(0)
    net = HiResUNet2D(HiResUNetConfig.variant(spec["variant"])).to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    size = int(spec["size_px"])
    x = torch.randn(1, 1, size, size, device=device)
    target = (torch.rand(1, 1, size, size, device=device) > 0.9).float()

    def step() -> float:
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), target)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    warmup_s = step()
    steps = int(spec["steps"])
    if steps and device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    elif steps:
        _reset_peak_rss()
    times = [step() for _ in range(steps)] or [warmup_s]  # --steps 0: the first step is the measurement
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = (peak_rss_bytes() or 0) - base_rss
    return {"device": device, "peak_train_bytes": peak, "time_per_image_s": statistics.median(times),
            "warmup_s": warmup_s, "steps": len(times)}


def measure(spec: Dict[str, Any], timeout_s: float) -> Dict[str, Any]:
    """Run :func:`train_step_worker` in a fresh, niced interpreter; ``{"error": ...}`` when it fails."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False,
                              preexec_fn=lambda: os.nice(max(0, int(spec["nice"]) - os.nice(0))))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or [""]
        return {"error": f"exit {proc.returncode} (out of memory under the cap?): {tail[0][-300:]}"}
    return json.loads(lines[-1])


def bench_one(variant: str, size_px: int, args: argparse.Namespace) -> Dict[str, Any]:
    """Estimate, then measure when the estimate fits under the cap; one table row."""
    est = estimate_training_bytes(variant, size_px)
    row: Dict[str, Any] = {"variant": variant, "size_px": size_px, "params": est["params"],
                           "estimate_gib": round(est["total_bytes"] / GIB, 3),
                           "estimate_state_gib": round(est["state_bytes"] / GIB, 3),
                           "estimate_activations_gib": round(est["saved_activation_bytes"] / GIB, 3)}
    if est["total_bytes"] > args.cap_gib * GIB:
        row["measured"] = False
        row["why_not_measured"] = f"estimate {row['estimate_gib']:.1f} GiB > cap {args.cap_gib} GiB"
    else:
        spec = {"variant": variant, "size_px": size_px, "steps": args.steps, "threads": args.threads,
                "cap_gib": args.cap_gib, "nice": args.nice}
        result = measure(spec, args.timeout_s)
        row["measured"] = "error" not in result
        row.update(result)
        if "peak_train_bytes" in result:
            row["peak_train_gib"] = round(result["peak_train_bytes"] / GIB, 3)
    peak = row.get("peak_train_gib", row["estimate_gib"])
    row["fits_budget"] = bool(peak <= args.budget_gib)
    log.info("%s", json.dumps(row))
    return row


def markdown_table(rows: Sequence[Dict[str, Any]], budget_gib: float) -> str:
    """The docs table: one row per variant and size."""
    lines = [f"| network | params | image (px) | estimate (GiB) | measured peak (GiB) | time / image (s) | "
             f"fits {budget_gib:g} GiB |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        why = r.get("why_not_measured") or r.get("error")
        peak = f"{r['peak_train_gib']:.2f}" if "peak_train_gib" in r else f"not run ({why})"
        secs = f"{r['time_per_image_s']:.1f}" if "time_per_image_s" in r else "-"
        lines.append(f"| {r['variant']} | {r['params'] / 1e6:.2f} M | {r['size_px']} | {r['estimate_gib']:.2f} | "
                     f"{peak} | {secs} | {'yes' if r['fits_budget'] else 'no'} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark (or one worker with ``--worker SPEC``)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    p.add_argument("--sizes", nargs="+", type=int, default=list(DEFAULT_SIZES_PX), metavar="PX")
    p.add_argument("--steps", type=int, default=2,
                   help="timed steps per configuration after one warm-up; 0: time and peak of the first step "
                        "(includes allocating the Adam state; for slow, loaded machines)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cap-gib", type=float, default=9.0, help="never measure a configuration estimated above this")
    p.add_argument("--budget-gib", type=float, default=8.0, help="the memory budget the table marks (8 GiB GPU)")
    p.add_argument("--nice", type=int, default=10, help="niceness of the measuring subprocesses (absolute)")
    p.add_argument("--timeout-s", type=float, default=900.0)
    p.add_argument("--output", type=Path, default=REPO / "benchmarks" / "output")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(train_step_worker(json.loads(args.worker))))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rows: List[Dict[str, Any]] = []
    result = {"machine": {"cpu_count": os.cpu_count(), "threads": args.threads, "torch": torch.__version__,
                          "python": platform.python_version(),
                          "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                          "load_average_start": list(os.getloadavg())},
              "budget_gib": args.budget_gib, "cap_gib": args.cap_gib, "rows": rows}
    args.output.mkdir(parents=True, exist_ok=True)
    out = args.output / f"hires_unet_memory_{_dt.datetime.now(_dt.timezone.utc):%Y%m%dT%H%M%SZ}.json"
    for variant in args.variants:
        for size in args.sizes:
            rows.append(bench_one(variant, size, args))
            out.write_text(json.dumps(result, indent=2))  # after every row: an interrupted run keeps its rows
    result["machine"]["load_average_end"] = list(os.getloadavg())
    out.write_text(json.dumps(result, indent=2))
    print(markdown_table(rows, args.budget_gib))
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
