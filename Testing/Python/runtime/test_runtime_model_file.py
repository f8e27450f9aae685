"""The ONNX export stored in the model folder: exported and verified once, reused, refused when changed."""
from __future__ import annotations

import json

import pytest
import torch

from breastlesionseg.cli.main import main
from breastlesionseg.errors import EXIT_BAD_INPUT, BackendUnavailableError, InputError
from breastlesionseg.nn import ModelCard, load_model
from breastlesionseg.nn.registry import sha256_file
from breastlesionseg.runtime import select_backend
from breastlesionseg.runtime.model_file import ONNX_FILE, export_into_model_dir, verified_onnx_path

pytest.importorskip("openvino", reason="openvino not installed (optional 'fast' extra)")


def test_export_into_model_dir_records_the_file_and_openvino_is_chosen(tiny_model_dir, capsys):
    assert main(["export", str(tiny_model_dir), "--format", "onnx", "--into-model-dir", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    card = ModelCard.read(tiny_model_dir)
    assert card.onnx_export == record and record["file"] == ONNX_FILE
    assert record["sha256"] == sha256_file(tiny_model_dir / ONNX_FILE)
    assert record["weights_sha256"] == card.weights_sha256
    assert record["verified_on_shapes"][0] == [1, 3, 16, 24, 24] and 0 <= record["max_abs_diff_vs_eager"] < 2e-3
    net, card = load_model(tiny_model_dir)  # the card with the new field still loads and verifies the weights
    sel = select_backend(net, "cpu", (16, 24, 24), model_dir=tiny_model_dir, card=card)
    assert sel.name == "openvino" and sel.skipped == []
    x = torch.randn(1, 3, 16, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(sel.network(x), net(x), atol=2e-3, rtol=1e-3)
    # a second export without --force is refused and leaves the first in place
    assert main(["export", str(tiny_model_dir), "--format", "onnx", "--into-model-dir"]) == EXIT_BAD_INPUT
    assert sha256_file(tiny_model_dir / ONNX_FILE) == record["sha256"]


def test_changed_or_missing_export_falls_back_to_eager(tiny_model_dir):
    export_into_model_dir(tiny_model_dir)
    net, card = load_model(tiny_model_dir)
    onnx = tiny_model_dir / ONNX_FILE
    onnx.write_bytes(onnx.read_bytes() + b"\0")  # edited after export
    with pytest.raises(BackendUnavailableError, match="sha256"):
        verified_onnx_path(tiny_model_dir, card)
    sel = select_backend(net, "cpu", (16, 24, 24), model_dir=tiny_model_dir, card=card)
    assert sel.name == "eager" and "sha256" in dict(sel.skipped)["openvino"]
    onnx.unlink()
    with pytest.raises(BackendUnavailableError, match="missing"):
        verified_onnx_path(tiny_model_dir, card)


def test_export_from_other_weights_is_refused(tiny_model_dir):
    export_into_model_dir(tiny_model_dir)
    card = ModelCard.read(tiny_model_dir)
    card.onnx_export = {**card.onnx_export, "weights_sha256": "0" * 64}
    with pytest.raises(BackendUnavailableError, match="other weights"):
        verified_onnx_path(tiny_model_dir, card)
    with pytest.raises(BackendUnavailableError, match="no verified ONNX export"):
        verified_onnx_path(tiny_model_dir, ModelCard.from_dict({**card.to_dict(), "onnx_export": {}}))


def test_card_rejects_a_malformed_export_record(tiny_model_dir):
    data = ModelCard.read(tiny_model_dir).to_dict()
    with pytest.raises(InputError, match="onnx_export.file"):
        ModelCard(**{**data, "onnx_export": {"file": "../x.onnx", "sha256": "0" * 64, "weights_sha256": "0" * 64}})
    with pytest.raises(InputError, match="onnx_export.sha256"):
        ModelCard(**{**data, "onnx_export": {"file": "m.onnx", "sha256": "xyz", "weights_sha256": "0" * 64}})


def test_shipped_demo_model_has_a_verified_export():
    from breastlesionseg.nn.registry import resolve_model

    folder = resolve_model("mm3dunet-phantom-demo")
    card = ModelCard.read(folder)
    assert verified_onnx_path(folder, card) == folder / ONNX_FILE
