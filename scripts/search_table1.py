#!/usr/bin/env python
"""Search the network configurations that reproduce Table 1 of Wang et al. 2025 (MM-3D UNet).

Table 1 gives parameters and FLOPs at one 1 x 1 x 32 x 256 x 256 input (a multiply-add = 2 FLOPs):

    3DUNet                 1.78 M   115.10 G
    MM-3DUNet t=6          0.21 M    27.05 G
    MM-3DUNet t=12         0.33 M    41.79 G
    MM-3DUNet t=12 + ACT   0.34 M    42.40 G

The paper fixes the MM-3DUNet skeleton (four encoder modules of two CEC units, channels doubling,
mirrored decoder with transposed convolutions, ACT head on the encoder's end) but not the base
width, the decoder units' expansion or the transposed-convolution kernel; it says nothing about the
baseline's layout. This script measures every candidate with the package's own networks built on the
meta device and ``FlopCounterMode`` (no compute), and ranks them by their worst relative error over
the rows. The dense baseline family is first screened with a closed-form count (it is large), then
the best candidates are measured for real.

Usage::

    .venv/bin/python scripts/search_table1.py [--top 5] [--json results.json]

Takes about a minute on 2 CPU cores. The chosen configurations (``MM3DUNetConfig`` defaults / ``TABLE1_UNET3D``) and
why are documented in docs/networks.md.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "BreastLesionSeg"))

from breastlesionseg.nn import build_network, count_flops, count_parameters  # noqa: E402

log = logging.getLogger("search_table1")
PAPER_INPUT = (1, 1, 32, 256, 256)
MM_ROWS = [  # (overrides, params, FLOPs)
    ({"expansion": 6, "act": False}, 0.21e6, 27.05e9),
    ({"expansion": 12, "act": False}, 0.33e6, 41.79e9),
    ({"expansion": 12, "act": True}, 0.34e6, 42.40e9),
]
UNET_ROW = (1.78e6, 115.10e9)


def measure(arch: str, config: dict) -> tuple[int, int]:
    """(parameters, FLOPs) of ``arch`` with ``config`` at the paper's input, on the meta device."""
    with torch.device("meta"):
        net = build_network(arch, dict(in_channels=1, **config))
    return count_parameters(net), count_flops(net, PAPER_INPUT)


def search_mm3dunet() -> list[dict]:
    """Every MM-3DUNet skeleton variant, ranked by its worst relative error over the three rows."""
    results = []
    for base, levels, t_dec, up_k in itertools.product([6, 8, 10], [3, 4, 5], [1, 2], [2, 3]):
        cfg = {"base_width": base, "levels": levels, "decoder_expansion": t_dec, "up_kernel_size": up_k}
        rows, worst = [], 0.0
        for overrides, p_ref, f_ref in MM_ROWS:
            p, f = measure("mm3dunet", {**cfg, **overrides})
            err = max(abs(p / p_ref - 1), abs(f / f_ref - 1))
            worst = max(worst, err)
            rows.append({**overrides, "params": p, "flops": f, "params_err": p / p_ref - 1, "flops_err": f / f_ref - 1})
        results.append({"config": cfg, "worst_error": worst, "rows": rows})
    return sorted(results, key=lambda r: r["worst_error"])


def dense_closed_form(widths: list[int], up_k: int, voxels: int = 32 * 256 * 256) -> tuple[float, float]:
    """Closed-form (params, FLOPs) of the ``double``-pattern UNet3D (2 convs/level, instance norm, 1 in/out channel)."""
    params = flops = 0.0
    for i, w in enumerate(widths):
        cin, v = (1 if i == 0 else widths[i - 1]), voxels / 8**i
        params += 27 * cin * w + 27 * w * w + 4 * w
        flops += 2 * v * 27 * (cin * w + w * w)
    for i in range(len(widths) - 1):
        w, v = widths[i], voxels / 8**i
        params += up_k**3 * widths[i + 1] * w + w + 81 * w * w + 4 * w
        flops += 2 * (v / 8) * up_k**3 * widths[i + 1] * w + 2 * v * 81 * w * w
    return params + widths[0] + 1, flops + 2 * voxels * widths[0]


def search_unet3d(top: int) -> list[dict]:
    """Dense baselines: plain doubling U-Nets and U-Nets whose first level's width is free.

    A plain doubling U-Net has a fixed FLOPs/parameter ratio per depth (4 levels ~150 G/M,
    5 levels ~42 G/M) while the paper's baseline has 65 G/M, so no plain one fits both numbers;
    letting level 0 differ from the doubling tail (like MONAI BasicUNet's ``features``) does.
    """
    p_ref, f_ref = UNET_ROW
    screened = []
    for levels, up_k in itertools.product([4, 5], [2, 3]):
        for w0 in range(4, 33):
            for c in range(4, 65):
                widths = [w0] + [c * 2**i for i in range(levels - 1)]
                p, f = dense_closed_form(widths, up_k)
                screened.append((max(abs(p / p_ref - 1), abs(f / f_ref - 1)), widths, up_k))
        for base in range(4, 33):
            widths = [base * 2**i for i in range(levels)]
            p, f = dense_closed_form(widths, up_k)
            screened.append((max(abs(p / p_ref - 1), abs(f / f_ref - 1)), widths, up_k))
    screened.sort(key=lambda r: r[0])
    plain = [s for s in screened if all(b == 2 * a for a, b in zip(s[1], s[1][1:]))]
    results, seen = [], set()
    for _, widths, up_k in screened[:top] + plain[:2]:
        if (tuple(widths), up_k) in seen:
            continue
        seen.add((tuple(widths), up_k))
        cfg = {"levels": len(widths), "widths": widths, "up_kernel_size": up_k}
        p, f = measure("unet3d", cfg)
        results.append({"config": cfg, "params": p, "flops": f, "params_err": p / p_ref - 1, "flops_err": f / f_ref - 1,
                        "worst_error": max(abs(p / p_ref - 1), abs(f / f_ref - 1)),
                        "plain_doubling": all(b == 2 * a for a, b in zip(widths, widths[1:]))})
    return results


def main(argv: list[str] | None = None) -> int:
    """Run both searches, print the ranking, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=5, help="candidates to show per network")
    parser.add_argument("--json", type=Path, default=None, help="write all results to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)

    mm = search_mm3dunet()
    print("MM-3DUNet (worst relative error over t=6, t=12, t=12+ACT; params and FLOPs):")
    for r in mm[: args.top]:
        rows = "  ".join(f"{x['params'] / 1e6:.3f}M/{x['flops'] / 1e9:.2f}G" for x in r["rows"])
        print(f"  {r['worst_error']:6.1%}  {r['config']}  {rows}")
    unet = search_unet3d(args.top)
    print("3D U-Net baseline (1.78 M / 115.10 G):")
    for r in unet:
        tag = " (plain doubling)" if r["plain_doubling"] else ""
        print(f"  {r['worst_error']:6.1%}  {r['config']}  {r['params'] / 1e6:.3f}M/{r['flops'] / 1e9:.2f}G{tag}")
    if args.json:
        args.json.write_text(json.dumps({"mm3dunet": mm, "unet3d": unet}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
