"""``breastlesionseg export``: export a model folder to ONNX or TorchScript for deployment.

The exported graph takes ``(N, C, D, H, W)`` with any batch and spatial size and returns the
segmentation logits (and the ACT logits when the model has the head). After writing, the export is
run once on a small random window and compared with PyTorch; the maximum difference is reported
and the command fails (exit 1) when it exceeds the documented tolerance.
"""
from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command."""
    p = subparsers.add_parser(
        "export",
        help="export a lesion model to ONNX or TorchScript (verified against PyTorch)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="model folder or model id in the model search path")
    p.add_argument("--format", required=True, choices=["onnx", "torchscript"], help="export format")
    p.add_argument("--output", required=True, metavar="PATH", help="output file (.onnx / .pt)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, verify, report; 0 on success, 1 when the verification fails, 2 on bad input."""
    import torch

    from ..errors import InputError
    from ..nn import load_model
    from ..nn.export import ONNX_ATOL, TORCHSCRIPT_ATOL, export_onnx, export_torchscript, onnx_session, run_onnx

    from pathlib import Path

    out = Path(args.output)
    if out.exists() and not args.force:
        raise InputError(f"refusing to overwrite existing file '{out}' (use --force)")
    module, card = load_model(args.model, device="cpu")
    m = module.size_multiple
    x = torch.randn(1, module.in_channels, m + 3, 2 * m + 1, 2 * m + 5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        seg, act = module.forward_with_aux(x)
    if args.format == "onnx":
        export_onnx(module, out, overwrite=args.force)
        seg2, act2 = run_onnx(onnx_session(out), x)
        atol = ONNX_ATOL
    else:
        export_torchscript(module, out, overwrite=args.force)
        loaded = torch.jit.load(str(out))
        with torch.no_grad():
            seg2, act2 = loaded.forward_with_aux(x)
        atol = TORCHSCRIPT_ATOL
    diff = float((seg2 - seg).abs().max())
    if act is not None and act2 is not None:
        diff = max(diff, float((act2 - act).abs().max()))
    ok = diff <= atol
    result = {"model_id": card.model_id, "weights_sha256": card.weights_sha256, "format": args.format,
              "output": str(out), "max_abs_diff": diff, "tolerance": atol, "verified": ok,
              "verified_on_shape": list(x.shape)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"exported {card.model_id} ({args.format}) to {out}; max |export - PyTorch| = {diff:.2e} "
              f"on {tuple(x.shape)} ({'OK' if ok else 'ABOVE'} tolerance {atol:g})")
    if not ok:
        log.error("exported model differs from PyTorch by %.3g > %.3g", diff, atol)
        return 1
    return 0
