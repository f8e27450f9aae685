"""The OpenVINO backend's model file: the network's ONNX export, stored and verified once in the model folder.

``breastlesionseg export MODEL --format onnx --into-model-dir`` (:func:`export_into_model_dir`) exports
the network, runs the export in OpenVINO on the card's sliding window and on a small odd-sized input,
compares with eager PyTorch (tolerance :data:`~.openvino_backend.OPENVINO_ATOL` + ``RTOL * |eager|``), and
only then moves ``model.onnx`` into the folder and records in the model card its file name, sha256, the
weights' sha256 it was exported from and the verification (:attr:`ModelCard.onnx_export`). ``segment``
reuses that file (:func:`verified_onnx_path`) and never exports at run time; a missing file, a changed
file or a file made from other weights makes the OpenVINO backend unavailable (eager PyTorch runs instead).
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
from pathlib import Path

import torch

from ..errors import BackendUnavailableError, ModelError
from ..io.atomic import atomic_path, write_text_atomic
from .backend import forward_with_aux, network_has_act
from .openvino_backend import OPENVINO_ATOL, OPENVINO_RTOL, compile_onnx, import_openvino

log = logging.getLogger(__name__)

#: file name of the export inside a model folder
ONNX_FILE = "model.onnx"


def export_command(model_dir: Path | str) -> str:
    """The command that (re)creates a model folder's verified ONNX export."""
    return f"breastlesionseg export {model_dir} --format onnx --into-model-dir"


def verified_onnx_path(model_dir: Path | None, card) -> Path:
    """The model folder's ONNX export when it exists and matches the card (sha256 of file and weights).

    Raises:
        BackendUnavailableError: no model folder, no export recorded, file missing, or a sha256 mismatch
            (the message says which and how to re-create it).
    """
    if model_dir is None or card is None:
        raise BackendUnavailableError("the network was not loaded from a model folder, so it has no ONNX export")
    from ..nn.registry import sha256_file  # noqa: PLC0415

    record = dict(getattr(card, "onnx_export", None) or {})
    if not record.get("file"):
        raise BackendUnavailableError(f"model folder '{model_dir}' has no verified ONNX export; create it once "
                                      f"with: {export_command(model_dir)}")
    path = Path(model_dir) / record["file"]
    if not path.is_file():
        raise BackendUnavailableError(f"'{path}' named by the model card is missing; re-create it with: "
                                      f"{export_command(model_dir)}")
    if record.get("weights_sha256") != card.weights_sha256:
        raise BackendUnavailableError(f"'{path}' was exported from other weights than the card's; re-create it "
                                      f"with: {export_command(model_dir)}")
    actual = sha256_file(path)
    if actual != record.get("sha256"):
        raise BackendUnavailableError(f"'{path}' has sha256 {actual} but the model card says {record.get('sha256')} "
                                      f"(changed after export); re-create it with: {export_command(model_dir)}")
    from ..nn.shipped_models import SHIPPED_MODELS  # noqa: PLC0415

    shipped = SHIPPED_MODELS.get(card.model_id, {}).get("onnx_sha256")
    if shipped is not None and actual != shipped:
        raise BackendUnavailableError(f"'{path}' claims to be the shipped model '{card.model_id}' but its sha256 is "
                                      f"not the one this package ships")
    return path


def _verification_inputs(module: torch.nn.Module, window_zyx) -> list[torch.Tensor]:
    """The card's window and a small odd-sized input (dynamic axes, internal padding), seeded."""
    m = int(getattr(module, "size_multiple", 8))
    c = int(module.in_channels)
    shapes = [(1, c, *[int(s) for s in window_zyx]), (1, c, m + 3, 2 * m + 1, 2 * m + 5)]
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(*shape, generator=gen) for shape in shapes]


def verify_against_eager(module: torch.nn.Module, path: Path, window_zyx, num_threads: int | None = None) -> dict:
    """Run the ONNX file in OpenVINO and eager ``module`` on the verification inputs; the record for the card.

    Raises:
        ModelError: the export differs from eager beyond the tolerance.
        BackendUnavailableError: openvino missing or the file does not compile.
    """
    network = compile_onnx(path, module.in_channels, module.out_channels, network_has_act(module), num_threads)
    worst, shapes = 0.0, []
    for x in _verification_inputs(module, window_zyx):
        with torch.no_grad():
            for got, ref in zip(network.forward_with_aux(x), forward_with_aux(module, x)):
                if ref is None:
                    continue
                if got is None or tuple(got.shape) != tuple(ref.shape):
                    raise ModelError(f"ONNX export '{path}': output shape differs from eager on {tuple(x.shape)}")
                diff = (got - ref).abs()
                worst = max(worst, float(diff.max()))
                if not bool(torch.all(diff <= OPENVINO_ATOL + OPENVINO_RTOL * ref.abs())):
                    raise ModelError(f"ONNX export '{path}' differs from eager PyTorch by up to {worst:.3g} on "
                                     f"{tuple(x.shape)} (tolerance {OPENVINO_ATOL:g} + {OPENVINO_RTOL:g} * |eager|)")
        shapes.append(list(x.shape))
    return {"runtime": f"openvino {import_openvino().__version__}", "max_abs_diff_vs_eager": worst,
            "atol": OPENVINO_ATOL, "rtol": OPENVINO_RTOL, "verified_on_shapes": shapes}


def export_into_model_dir(model: str | os.PathLike, force: bool = False, num_threads: int | None = None) -> dict:
    """Export a model folder's network to ``model.onnx`` beside its weights, verify it, record it in the card.

    Args:
        model: model folder or id (resolved and loaded with the weights' sha256 checked).
        force: replace an existing export.
        num_threads: OpenVINO threads for the verification.

    Returns:
        The card's new ``onnx_export`` record (file, sha256, weights_sha256, verification, versions).

    Raises:
        InputError: an export exists and ``force`` is false.
        ModelError: the model cannot be loaded, the exporter fails or the export does not match eager.
        BackendUnavailableError: openvino is not installed.
    """
    from ..nn.export import export_onnx  # noqa: PLC0415
    from ..nn.model_card import CARD_FILE  # noqa: PLC0415
    from ..nn.registry import load_model, resolve_model, sha256_file  # noqa: PLC0415

    folder = resolve_model(model)
    module, card = load_model(folder, device="cpu")
    import_openvino()
    target = folder / ONNX_FILE
    window = card.inference_window or card.patch_size
    with atomic_path(target, overwrite=force) as tmp:
        export_onnx(module, tmp, overwrite=True)
        record = verify_against_eager(module, tmp, window, num_threads)
        sha = sha256_file(tmp)
    record = {"file": ONNX_FILE, "sha256": sha, "weights_sha256": card.weights_sha256,
              "exporter": f"torch {torch.__version__} (torch.onnx, dynamo=False)",
              "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
              "command": export_command(model), **record}
    card.onnx_export = record
    card.validate()
    write_text_atomic(folder / CARD_FILE, card.to_json(), overwrite=True)
    log.info("exported and verified %s (sha256 %s, max |diff| vs eager %.2e)", target, sha,
             record["max_abs_diff_vs_eager"])
    return record
