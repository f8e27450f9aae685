"""``breastlesionseg export``: export a model folder to ONNX or TorchScript.

    breastlesionseg export MODEL --format onnx --into-model-dir        # once per model, for OpenVINO
    breastlesionseg export MODEL --format onnx|torchscript --output PATH

``--into-model-dir`` writes ``model.onnx`` beside the weights, runs it in OpenVINO on the model card's
window and on a small odd-sized input, and records its sha256 and the verification in ``model_card.json``;
``segment`` then runs the model in OpenVINO on CPU (without it: eager PyTorch). Run it again after every
re-training. ``--output`` writes a standalone file for deployment elsewhere, verified once on a small random
input (ONNX Runtime for ONNX, TorchScript itself otherwise). Either way the command fails when the export
differs from PyTorch beyond the documented tolerance.
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
        help="export a lesion model to ONNX (into its folder, for OpenVINO) or TorchScript, verified against PyTorch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="model folder or model id in the model search path")
    p.add_argument("--format", required=True, choices=["onnx", "torchscript"], help="export format")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--into-model-dir", action="store_true",
                       help="(onnx) write model.onnx into the model folder and record it in the model card")
    where.add_argument("--output", metavar="PATH", help="standalone output file (.onnx / .pt)")
    p.add_argument("--force", action="store_true", help="overwrite an existing export")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, verify, report; 0 on success, 1 when the verification fails (see ``errors.EXIT_*``)."""
    from ..errors import EXIT_FAILURE, InputError

    if args.into_model_dir:
        if args.format != "onnx":
            raise InputError("--into-model-dir is for --format onnx (the OpenVINO backend's file)")
        from ..runtime.model_file import export_into_model_dir

        record = export_into_model_dir(args.model, force=args.force)
        if args.json:
            print(json.dumps(record, indent=2))
        else:
            print(f"exported {record['file']} into the model folder (sha256 {record['sha256']}); max |OpenVINO - "
                  f"PyTorch| = {record['max_abs_diff_vs_eager']:.2e} on {record['verified_on_shapes']}")
        return 0
    result = _export_standalone(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"exported {result['model_id']} ({args.format}) to {result['output']}; max |export - PyTorch| = "
              f"{result['max_abs_diff']:.2e} on {tuple(result['verified_on_shape'])} "
              f"({'OK' if result['verified'] else 'ABOVE'} tolerance {result['tolerance']:g})")
    if not result["verified"]:
        log.error("exported model differs from PyTorch by %.3g > %.3g", result["max_abs_diff"], result["tolerance"])
        return EXIT_FAILURE
    return 0


def _export_standalone(args: argparse.Namespace) -> dict:
    """``--output PATH``: export, run once on a seeded odd-sized input, compare with PyTorch."""
    from pathlib import Path

    import torch

    from ..errors import InputError
    from ..nn import load_model
    from ..nn.export import ONNX_ATOL, TORCHSCRIPT_ATOL, export_onnx, export_torchscript, onnx_session, run_onnx

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
        with torch.no_grad():
            seg2, act2 = torch.jit.load(str(out)).forward_with_aux(x)
        atol = TORCHSCRIPT_ATOL
    diff = float((seg2 - seg).abs().max())
    if act is not None and act2 is not None:
        diff = max(diff, float((act2 - act).abs().max()))
    return {"model_id": card.model_id, "weights_sha256": card.weights_sha256, "format": args.format,
            "output": str(out), "max_abs_diff": diff, "tolerance": atol, "verified": diff <= atol,
            "verified_on_shape": list(x.shape)}
