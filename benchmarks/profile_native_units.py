#!/usr/bin/env python
"""Where does MM-3DUNet's forward time go in the fused C++ backend? Per-layer wall time (issue 8).

Builds :class:`~breastlesionseg.runtime.native_cec.NativeMM3DUNet` (the ``native_cec`` backend's network;
the kernel is compiled on first use) around a seeded MM-3DUNet, runs a few forward passes on random data
and times, with hooks, every CEC unit (``enc.L.i``, ``bott.i``, ``dec.L.i``; decoder level 0 is the
deepest), the pooling (summed over levels), each transposed convolution (``upL``), the ACT head and the
1x1x1 head. Prints the median over the timed passes (the first pass, which allocates the kept buffers,
is not timed) and the share of the whole forward pass.

Usage::

    python benchmarks/profile_native_units.py                    # t=12 + ACT, 1 x 1 x 32 x 256 x 256
    python benchmarks/profile_native_units.py --expansion 6 --no-act --repeats 7

Notes: hooks synchronise nothing (all work is on the CPU, in the calling thread's OpenMP team), so the
per-layer times add up to the forward time less Python overhead; the kernel's parallel regions use the
``--threads`` OpenMP threads.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "BreastLesionSeg"))

from breastlesionseg.runtime.cpu_info import cpu_model  # noqa: E402

log = logging.getLogger("profile_native_units")


class LayerClock:
    """Wall time per named layer, per forward pass (layers called several times per pass are summed)."""

    def __init__(self) -> None:
        self.current: Dict[str, float] = defaultdict(float)
        self.passes: List[Dict[str, float]] = []

    def timed(self, name: str, fn: Callable) -> Callable:
        """``fn`` wrapped so that its wall time adds to ``name``."""
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self.current[name] += time.perf_counter() - t0
            return out
        return run

    def end_pass(self) -> None:
        self.passes.append(dict(self.current))
        self.current = defaultdict(float)


def instrument(native, clock: LayerClock) -> None:
    """Wrap the units and hook layers of a NativeMM3DUNet with ``clock``."""
    for level, units in enumerate(native.enc):
        for i, unit in enumerate(units):
            unit.forward = clock.timed(f"enc.{level}.{i}", unit.forward)
    for i, unit in enumerate(native.bott):
        unit.forward = clock.timed(f"bott.{i}", unit.forward)
    for level, (units, dec_level) in enumerate(zip(native.dec, native.decoder)):
        dec_level.up_fn = clock.timed(f"up{level}", dec_level.up_fn)
        for i, unit in enumerate(units):
            unit.forward = clock.timed(f"dec.{level}.{i}", unit.forward)
    native.pool.fn = clock.timed("pool (all levels)", native.pool.fn)
    native.head.fn = clock.timed("head", native.head.fn)
    if native.act_head is not None:
        native.act_head.forward = clock.timed("ACT head", native.act_head.forward)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=5, default=[1, 1, 32, 256, 256], metavar=("N", "C", "D", "H", "W"))
    parser.add_argument("--expansion", type=int, default=12, help="MM-3DUNet expansion t (default 12)")
    parser.add_argument("--no-act", action="store_true", help="without the ACT head")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed forward passes (after one untimed)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")

    import torch

    from breastlesionseg.nn import MM3DUNet, MM3DUNetConfig
    from breastlesionseg.runtime import tune_cpu_allocator
    from breastlesionseg.runtime.native_cec import NativeMM3DUNet, native_unavailable_reason

    why = native_unavailable_reason()
    if why:
        log.error("cannot profile the fused C++ backend here: %s", why)
        return 2
    torch.set_num_threads(args.threads)
    tune_cpu_allocator()  # as the native_cec backend's prepare() does
    torch.manual_seed(0)
    net = MM3DUNet(MM3DUNetConfig(in_channels=args.shape[1], expansion=args.expansion, act=not args.no_act)).eval()
    native = NativeMM3DUNet(net)
    clock = LayerClock()
    instrument(native, clock)
    x = torch.randn(*args.shape, generator=torch.Generator().manual_seed(1))
    walls = []
    for _ in range(args.repeats + 1):
        t0 = time.perf_counter()
        native.forward_with_aux(x)
        walls.append(time.perf_counter() - t0)
        clock.end_pass()
    walls, passes = walls[1:], clock.passes[1:]
    wall = statistics.median(walls)
    log.info("machine: %s, %d threads, torch %s; MM-3DUNet t=%d%s at %s; forward median %.3f s (%s)",
             cpu_model(), args.threads, torch.__version__, args.expansion, "" if args.no_act else "+ACT",
             "x".join(map(str, args.shape)), wall, ", ".join(f"{w:.3f}" for w in walls))
    log.info("%-20s %10s %8s", "layer", "median ms", "share")
    total = 0.0
    for name in passes[0]:
        median = statistics.median(p.get(name, 0.0) for p in passes)
        total += median
        log.info("%-20s %10.1f %7.1f%%", name, 1e3 * median, 100.0 * median / wall)
    log.info("%-20s %10.1f %7.1f%%", "sum of layers", 1e3 * total, 100.0 * total / wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
