"""``breastlesionseg model-summary hires-unet``: the lightweight U-Net family's parameters and FLOPs."""
from __future__ import annotations

import json

from ..errors import InputError
from ..nn.hires_unet_config import SHIPPED_HIRES_VARIANT


def parse_image_size(text: str, name: str = "--image-size") -> tuple[int, int]:
    """``"1536,1536" -> (1536, 1536)``; raises InputError naming the argument."""
    try:
        values = tuple(int(v) for v in str(text).replace("x", ",").split(","))
    except ValueError:
        values = ()
    if len(values) != 2 or any(v < 1 for v in values):
        raise InputError(f"{name} must be two positive integers H,W in px (e.g. 1536,1536); got {text!r}")
    return values  # type: ignore[return-value]


def run_hires_unet_summary(variant: str | None, image_size: str, as_json: bool) -> int:
    """Print the summary of ``variant`` (default: the shipped one) at ``image_size``; returns 0."""
    from ..nn.hires_unet_summary import summarize_hires_unet

    result = summarize_hires_unet(variant or SHIPPED_HIRES_VARIANT, parse_image_size(image_size))
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    cfg = result["config"]
    print(f"architecture: hires-unet  variant={result['variant']}  levels={cfg['levels']}  "
          f"base width={cfg['base_width']}  separable={cfg['separable']}  residual={cfg['residual']}")
    print(f"input:        {' x '.join(str(s) for s in result['input_shape'])}")
    print(f"parameters:   {result['params']:,} ({result['params'] / 1e6:.3f} M; paper "
          f"{result['paper_params'] / 1e6:.1f} M, {100 * result['params_vs_paper']:+.1f} %)")
    print(f"FLOPs:        {result['flops']:,} ({result['gflops']:.2f} G; multiply-add = 2 FLOPs)")
    return 0
