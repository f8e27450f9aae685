"""``breastlesionseg model-summary``: parameters and FLOPs of a lesion network (Wang et al. 2025, Table 1).

FLOPs count a multiply-add as 2 FLOPs (convolutions, transposed convolutions, linear layers; norms and
activations excluded) at one forward pass of the given input, measured with
``torch.utils.flop_counter.FlopCounterMode`` on the meta device (instant, no memory).
The paper's Table 1 rows::

    breastlesionseg model-summary unet3d --json                 # 3DUNet          1.78 M / 115.10 G
    breastlesionseg model-summary mm3dunet --expansion 6 --json  # MM-3DUNet t=6   0.21 M /  27.05 G
    breastlesionseg model-summary mm3dunet --expansion 12 --json # MM-3DUNet t=12  0.33 M /  41.79 G
    breastlesionseg model-summary mm3dunet --expansion 12 --act  # + ACT           0.34 M /  42.40 G
"""
from __future__ import annotations

import argparse
import json

from ..errors import InputError

PAPER_INPUT_SHAPE = (32, 256, 256)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``model-summary`` sub-command."""
    p = subparsers.add_parser(
        "model-summary",
        help="parameters and FLOPs of MM-3DUNet / the dense 3D U-Net (reproduces Wang et al. 2025 Table 1)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("arch", choices=["mm3dunet", "unet3d", "hires-unet", "attention_unet2d", "u2net_lite",
                                    "resnext_classifier2d"],
                   help="network architecture")
    p.add_argument("--input-size", type=int, default=None, metavar="PX",
                   help="attention_unet2d / u2net_lite / resnext_classifier2d (ultrasound): square input side in px "
                        "(default: the shipped model's, 128; the crop classifier's 64)")
    p.add_argument("--variant", default=None, metavar="NAME",
                   help="hires-unet: standard4 | deep7 | deep7-f16 | separable | separable-residual "
                        "(default: the shipped separable-residual; Tardy & Mateus parameter progression)")
    p.add_argument("--image-size", default="1536,1536", metavar="H,W",
                   help="hires-unet: image size in px for the FLOPs (default 1536,1536, the paper's input)")
    p.add_argument("--expansion", type=int, default=None, metavar="T", help="CEC expansion factor t (mm3dunet; default 12)")
    p.add_argument("--act", action="store_true", help="include the auxiliary classification (ACT) head (default: off)")
    p.add_argument("--in-channels", type=int, default=1, metavar="N", help="input channels (default 1, as in Table 1)")
    p.add_argument("--input-shape", default="32,256,256", metavar="D,H,W",
                   help="spatial input size in voxels (default 32,256,256, the paper's input)")
    p.add_argument("--base-width", type=int, default=None, metavar="B",
                   help="channels of the first level, doubling per level (default: mm3dunet 8; unet3d: "
                        "the Table 1 baseline widths 13, 18, 36, 72, 144 unless --base-width/--levels are given)")
    p.add_argument("--levels", type=int, default=None, metavar="L", help="resolution levels (default 4; unet3d Table 1: 5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def parse_shape(text: str, name: str = "--input-shape") -> tuple[int, int, int]:
    """``"32,256,256" -> (32, 256, 256)``; raises InputError naming the argument."""
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or any(v < 1 for v in values):
        raise InputError(f"{name} must be three positive integers D,H,W (e.g. 32,256,256); got {text!r}")
    return values  # type: ignore[return-value]


def summarize(arch: str, overrides: dict, input_shape: tuple[int, int, int]) -> dict:
    """``{"arch", "params", "flops", "gflops", "config", "input_shape"}`` of a network built on the meta device."""
    import torch

    from ..nn import build_network, count_flops, count_parameters

    with torch.device("meta"):
        net = build_network(arch, overrides)
    shape = (1, net.in_channels) + tuple(input_shape)
    flops = count_flops(net, shape)
    return {
        "arch": arch,
        "params": count_parameters(net),
        "flops": flops,
        "gflops": round(flops / 1e9, 4),
        "config": net.config.to_dict(),
        "input_shape": list(shape),
    }


def run(args: argparse.Namespace) -> int:
    """Print the summary; exit code 2 on a bad argument."""
    if args.arch == "hires-unet":
        from ..mammography.model_summary import run_hires_unet_summary

        return run_hires_unet_summary(args.variant, args.image_size, args.json)
    if args.arch == "resnext_classifier2d":
        from ..nn.summary2d import format_classifier_summary_2d, summarize_classifier_2d
        from ..ultrasound.config import CROP_CLASSIFIER_SIZE_PX

        result = summarize_classifier_2d(args.input_size or CROP_CLASSIFIER_SIZE_PX)
        print(json.dumps(result, indent=2) if args.json else format_classifier_summary_2d(result))
        return 0
    if args.arch in ("attention_unet2d", "u2net_lite"):
        from ..nn.summary2d import format_summary_2d, summarize_2d

        result = summarize_2d(args.arch, {"in_channels": args.in_channels}, args.input_size or 128)
        print(json.dumps(result, indent=2) if args.json else format_summary_2d(result))
        return 0
    shape = parse_shape(args.input_shape)
    overrides: dict = {"in_channels": args.in_channels, "act": bool(args.act)}
    if args.expansion is not None:
        if args.arch != "mm3dunet":
            raise InputError(f"--expansion applies to mm3dunet only; got arch {args.arch!r}")
        overrides["expansion"] = args.expansion
    if args.base_width is not None:
        overrides["base_width"] = args.base_width
    if args.levels is not None:
        overrides["levels"] = args.levels
    if args.arch == "unet3d" and args.base_width is None and args.levels is None:
        from ..nn.config import TABLE1_UNET3D

        overrides = {**TABLE1_UNET3D, **overrides}  # the Table 1 baseline unless the layout is given
    result = summarize(args.arch, overrides, shape)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        cfg = result["config"]
        print(f"architecture: {args.arch}  t={cfg.get('expansion', '-')}  ACT={'on' if cfg['act'] else 'off'}")
        print(f"input:        {' x '.join(str(s) for s in result['input_shape'])}")
        print(f"parameters:   {result['params']:,} ({result['params'] / 1e6:.3f} M)")
        print(f"FLOPs:        {result['flops']:,} ({result['gflops']:.2f} G; multiply-add = 2 FLOPs)")
    return 0
