#!/usr/bin/env python
"""Where does a network's forward time go in OpenVINO? Per-layer profile grouped by module (issue 8).

Compiles the network's ONNX export (``breastlesionseg.nn.export``) with the same CPU-plugin settings as
the ``openvino`` backend plus ``PERF_COUNT``, runs a few forward passes on random data and prints:

* the wall time of each forward pass;
* the plugin's per-node execution time summed per network module (e.g. ``/encoders.0/encoders.0.1``,
  one CEC unit) and per resolution level (level 0 = full resolution);
* the slowest individual nodes with their kernel (``exec_type``).

Usage::

    python benchmarks/profile_openvino_layers.py                       # MM-3DUNet t=12+ACT, 1 x 1 x 32 x 256 x 256
    python benchmarks/profile_openvino_layers.py --network unet3d      # the Table 1 dense baseline
    python benchmarks/profile_openvino_layers.py --shape 1 3 16 32 32 --base-width 4   # the demo model's window

Notes: the per-node times are the plugin's own counters; their sum exceeds the wall time a little
(profiling overhead). Nodes with generated names (the instance norms, ``MVN_1026``) are attributed to
the module of the first original layer fused into them (the runtime model's ``originalLayersNames``).
"""
from __future__ import annotations

import argparse
import collections
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "BreastLesionSeg"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

log = logging.getLogger("profile_openvino_layers")


def build(network: str, in_channels: int, base_width: int | None):
    """The network to profile (random weights: the timing does not depend on them)."""
    import torch

    from breastlesionseg.nn.config import MM3DUNetConfig, UNet3DConfig
    from breastlesionseg.nn.mm3dunet import MM3DUNet
    from breastlesionseg.nn.unet3d import UNet3D

    torch.manual_seed(0)
    if network == "mm3dunet":
        kw = {"in_channels": in_channels, **({"base_width": base_width} if base_width else {})}
        return MM3DUNet(MM3DUNetConfig(**kw)).eval()
    return UNet3D(UNet3DConfig.table1(in_channels=in_channels)).eval()


def level_of(module: str, n_decoder: int) -> str:
    """Resolution level of a module path: ``/encoders.1/...`` -> level 1; the decoder list runs deep to
    shallow, so ``/decoder.{i}`` works at level ``n_decoder - 1 - i`` (the last one at full resolution)."""
    m = re.match(r"/encoders\.(\d+)", module)
    if m:
        return f"level {m.group(1)} encoder"
    m = re.match(r"/decoder\.(\d+)", module)
    if m:
        return f"level {n_decoder - 1 - int(m.group(1))} decoder"
    if module.startswith("/bottleneck") or module.startswith("/act_head"):
        return "bottleneck + ACT"
    return "other"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", choices=("mm3dunet", "unet3d"), default="mm3dunet")
    parser.add_argument("--shape", type=int, nargs=5, default=[1, 1, 32, 256, 256], metavar=("N", "C", "D", "H", "W"))
    parser.add_argument("--base-width", type=int, default=None, help="MM-3DUNet base width (default: the config's 8)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top", type=int, default=15, help="slowest nodes to list")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)

    import numpy as np
    import openvino as ov

    from breastlesionseg.nn.export import export_onnx

    net = build(args.network, args.shape[1], args.base_width)
    core = ov.Core()
    with tempfile.TemporaryDirectory(prefix="bls-ov-profile-") as tmp:
        export_onnx(net, Path(tmp) / "model.onnx")
        model = core.read_model(str(Path(tmp) / "model.onnx"))
    model.reshape({model.inputs[0].get_any_name(): list(args.shape)})
    compiled = core.compile_model(model, "CPU", {
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": args.threads,
        "INFERENCE_PRECISION_HINT": "f32", "PERF_COUNT": True,
    })
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).random(args.shape, dtype=np.float32)
    log.info("machine: %s, %d threads, openvino %s; %s at %s", cpu_model(), args.threads, ov.__version__,
             args.network, "x".join(map(str, args.shape)))
    walls = []
    for _ in range(args.repeats + 1):  # the first pass warms up
        t0 = time.perf_counter()
        request.infer({0: x})
        walls.append(time.perf_counter() - t0)
    log.info("forward wall s: %s (first = warm-up)", ", ".join(f"{w:.3f}" for w in walls))

    # a node's network module: its own name, or (for generated names such as MVN_1026) the first original
    # layer fused into it, e.g. "/encoders.0/encoders.0.0/expand/expand.1/expand.1.1/LeakyRelu"
    origin: dict[str, str] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        fused = info["originalLayersNames"].astype(str) if "originalLayersNames" in info else ""
        paths = [n for n in [op.get_friendly_name(), *fused.split(",")] if n.startswith("/")]
        if paths:
            origin[op.get_friendly_name()] = paths[0]
    per_module: dict[str, float] = collections.defaultdict(float)
    per_level: dict[str, float] = collections.defaultdict(float)
    nodes = []
    total = 0.0
    for info in request.profiling_info:  # counters of the last forward pass
        seconds = info.real_time.total_seconds()
        if seconds <= 0:
            continue
        total += seconds
        path = origin.get(info.node_name, info.node_name)
        module = "/".join(path.split("/")[:3]) if path.startswith("/") else info.node_type
        per_module[module] += seconds
        per_level[level_of(module, len(getattr(net, "decoder", [])))] += seconds
        nodes.append((seconds, info.node_type, info.exec_type, info.node_name))
    log.info("\nprofiled node time (last pass): %.3f s", total)
    log.info("\n| level | s | share |\n|---|---|---|")
    for name, seconds in sorted(per_level.items(), key=lambda kv: -kv[1]):
        log.info("| %s | %.3f | %.0f%% |", name, seconds, 100 * seconds / total)
    log.info("\n| module | s | share |\n|---|---|---|")
    for name, seconds in sorted(per_module.items(), key=lambda kv: -kv[1])[:20]:
        log.info("| %s | %.3f | %.0f%% |", name, seconds, 100 * seconds / total)
    log.info("\nslowest nodes:")
    for seconds, node_type, exec_type, name in sorted(nodes, reverse=True)[: args.top]:
        log.info("  %.3f s  %-24s %-26s %s", seconds, node_type, exec_type, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
