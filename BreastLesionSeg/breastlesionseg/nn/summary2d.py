"""Parameters, size and FLOPs of the 2D networks (``breastlesionseg model-summary attention_unet2d|u2net_lite``).

Paper reference: U2NET-Lite is 4.7 MB (float32, segmentation part: ~1.1 M parameters); the attention
U-Net of the BUSI paper gives no parameter count (its encoders were ImageNet backbones; ours is a light
encoder trained from scratch).
"""
from __future__ import annotations

from typing import Any

#: published model sizes for comparison (MB of float32 weights), by architecture
PAPER_SIZE_MB: dict[str, float] = {"u2net_lite": 4.7}


def _meta_forward_flops(net: Any, shape: tuple[int, ...]) -> int:
    """FLOPs (2 per multiply-add) of one forward pass of a meta-device 2D network at input ``shape`` (N, C, H, W)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        net(torch.zeros(shape))
    return int(counter.get_total_flops())


def summarize_2d(arch: str, overrides: dict[str, Any], size_px: int) -> dict[str, Any]:
    """``{"arch", "params", "segmentation_params", "size_mb", "paper_size_mb", "flops", "gflops", "config", "input_shape"}``."""
    import torch

    from .factory2d import build_network_2d
    from .flops import count_parameters

    with torch.device("meta"):
        net = build_network_2d(arch, overrides)
    shape = (1, net.in_channels, size_px, size_px)
    params = count_parameters(net)
    head_params = sum(p.numel() for name, p in net.named_parameters() if name.startswith("heads."))
    flops = _meta_forward_flops(net, shape)
    return {"arch": arch, "params": params, "segmentation_params": params - head_params,
            "size_mb": round(params * 4 / 1e6, 3), "segmentation_size_mb": round((params - head_params) * 4 / 1e6, 3),
            "paper_size_mb": PAPER_SIZE_MB.get(arch), "flops": flops, "gflops": round(flops / 1e9, 4),
            "config": net.config.to_dict(), "input_shape": list(shape)}


def format_summary_2d(result: dict[str, Any]) -> str:
    """Human-readable lines of :func:`summarize_2d`."""
    paper = f" (paper: {result['paper_size_mb']} MB)" if result["paper_size_mb"] else ""
    return "\n".join([
        f"architecture: {result['arch']}",
        f"input:        {' x '.join(str(s) for s in result['input_shape'])}",
        f"parameters:   {result['params']:,} ({result['params'] / 1e6:.3f} M; segmentation part {result['segmentation_params']:,})",
        f"size:         {result['size_mb']:.2f} MB float32; segmentation part {result['segmentation_size_mb']:.2f} MB{paper}",
        f"FLOPs:        {result['flops']:,} ({result['gflops']:.3f} G; multiply-add = 2 FLOPs)",
    ])


#: the U2NET-Lite paper's classifier, ResNeXt-50 32x4d (Xie et al. 2017, Table 1: 25.0 M parameters)
PAPER_CLASSIFIER_PARAMS = 25_000_000


def summarize_classifier_2d(size_px: int, in_channels: int = 2) -> dict[str, Any]:
    """``{"arch", "params", "paper_params", "size_mb", "flops", "gflops", "config", "input_shape"}`` of the
    ResNeXt-style lesion-crop classifier (``nn.resnext_classifier2d``) at a ``size_px`` square input."""
    import torch

    from .config2d import ResNeXtClassifier2DConfig
    from .flops import count_parameters
    from .resnext_classifier2d import ResNeXtClassifier2D

    with torch.device("meta"):
        net = ResNeXtClassifier2D(ResNeXtClassifier2DConfig(in_channels=in_channels))
    shape = (1, in_channels, size_px, size_px)
    params = count_parameters(net)
    flops = _meta_forward_flops(net, shape)
    return {"arch": "resnext_classifier2d", "params": params, "paper_params": PAPER_CLASSIFIER_PARAMS,
            "size_mb": round(params * 4 / 1e6, 3), "flops": flops, "gflops": round(flops / 1e9, 4),
            "config": net.config.to_dict(), "input_shape": list(shape)}


def format_classifier_summary_2d(result: dict[str, Any]) -> str:
    """Human-readable lines of :func:`summarize_classifier_2d`."""
    return "\n".join([
        f"architecture: {result['arch']} (SE-ResNeXt bottlenecks, {result['config']['groups']} groups)",
        f"input:        {' x '.join(str(s) for s in result['input_shape'])} (lesion crop + mask)",
        f"parameters:   {result['params']:,} ({result['params'] / 1e6:.3f} M; the paper's ResNeXt-50 32x4d: "
        f"{result['paper_params'] / 1e6:.0f} M)",
        f"size:         {result['size_mb']:.2f} MB float32",
        f"FLOPs:        {result['flops']:,} ({result['gflops']:.3f} G; multiply-add = 2 FLOPs)",
    ])
