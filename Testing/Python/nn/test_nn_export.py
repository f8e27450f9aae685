"""TorchScript and ONNX exports match eager PyTorch at several (odd) window sizes."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.errors import InputError
from breastlesionseg.nn import build_network
from breastlesionseg.nn.export import ONNX_ATOL, TORCHSCRIPT_ATOL, export_onnx, export_torchscript, onnx_session, run_onnx

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_network("mm3dunet", dict(in_channels=2, expansion=2, base_width=4)).eval()


def test_torchscript_round_trip(net, tmp_path):
    path = export_torchscript(net, tmp_path / "m.pt")
    loaded = torch.jit.load(str(path))
    x = torch.randn(2, 2, 11, 21, 19)
    with torch.no_grad():
        s, a = net.forward_with_aux(x)
        s2, a2 = loaded.forward_with_aux(x)
        torch.testing.assert_close(loaded(x), s, atol=TORCHSCRIPT_ATOL, rtol=0)
    torch.testing.assert_close(s2, s, atol=TORCHSCRIPT_ATOL, rtol=0)
    torch.testing.assert_close(a2, a, atol=TORCHSCRIPT_ATOL, rtol=0)
    with pytest.raises(InputError, match="refusing to overwrite"):
        export_torchscript(net, path)


def test_onnx_round_trip_dynamic_sizes(net, tmp_path):
    path = export_onnx(net, tmp_path / "m.onnx")
    session = onnx_session(path)
    assert [o.name for o in session.get_outputs()] == ["seg_logits", "act_logits"]
    for shape in [(1, 2, 17, 35, 33), (2, 2, 9, 20, 21), (1, 2, 16, 16, 16)]:
        x = torch.randn(shape)
        with torch.no_grad():
            s, a = net.forward_with_aux(x)
        s2, a2 = run_onnx(session, x)
        assert s2.shape == s.shape
        torch.testing.assert_close(s2, s, atol=ONNX_ATOL, rtol=0)
        torch.testing.assert_close(a2, a, atol=ONNX_ATOL, rtol=0)


def test_onnx_without_act_has_one_output(tmp_path):
    net = build_network("unet3d", dict(in_channels=1, base_width=4, levels=3, widths=None)).eval()
    session = onnx_session(export_onnx(net, tmp_path / "u.onnx", example_shape=(1, 1, 9, 10, 11)))
    assert [o.name for o in session.get_outputs()] == ["seg_logits"]
    x = torch.randn(1, 1, 13, 12, 7)
    s2, a2 = run_onnx(session, x)
    assert a2 is None
    with torch.no_grad():
        torch.testing.assert_close(s2, net(x), atol=ONNX_ATOL, rtol=0)
    with pytest.raises(InputError, match="example_shape"):
        export_onnx(net, tmp_path / "v.onnx", example_shape=(1, 3, 9, 9, 9))


def test_export_cli_verifies_against_pytorch(tmp_path, capsys):
    import json

    from breastlesionseg.cli.main import main
    from breastlesionseg.nn import ModelCard, save_model

    torch.manual_seed(0)
    net = build_network("mm3dunet", dict(in_channels=2, expansion=2, base_width=4))
    card = ModelCard(model_id="cli-export", arch="mm3dunet", config=net.config.to_dict(),
                     input_channels=["pre", "sub1"], demo=True)
    folder = save_model(net, card, tmp_path / "cli-export")
    out = tmp_path / "m.onnx"
    assert main(["export", str(folder), "--format", "onnx", "--output", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verified"] is True and result["max_abs_diff"] <= ONNX_ATOL and out.is_file()
    assert result["weights_sha256"] == card.weights_sha256
    # refuses to overwrite without --force (exit 2), then overwrites with it
    assert main(["export", str(folder), "--format", "torchscript", "--output", str(out)]) == 2
    assert main(["export", str(folder), "--format", "torchscript", "--output", str(out), "--force"]) == 0
    assert torch.jit.load(str(out)).forward_with_aux(torch.randn(1, 2, 9, 9, 9))[1].shape == (1, 2)
