"""OpenVINO backend: static-shape compile cache, batches, ACT logits, thread setting."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.nn import MM3DUNet, MM3DUNetConfig, UNet3D, UNet3DConfig
from breastlesionseg.nn.export import export_onnx
from breastlesionseg.runtime.openvino_backend import (MAX_COMPILED_SHAPES, OPENVINO_ATOL, OPENVINO_RTOL,
                                                      compile_onnx)

pytest.importorskip("openvino", reason="openvino not installed (optional 'fast' extra)")


def _compiled(net, tmp_path, window, threads=1):
    path = export_onnx(net, tmp_path / "m.onnx")
    return compile_onnx(path, net.in_channels, net.out_channels, net.act_head is not None if hasattr(net, "act_head")
                        else False, threads, window)


def test_window_shape_compiled_at_prepare_and_shapes_cached(tmp_path):
    torch.manual_seed(3)
    mm_net = MM3DUNet(MM3DUNetConfig(in_channels=3, expansion=4, act=True)).eval()
    net = _compiled(mm_net, tmp_path, (1, 3, 16, 24, 24))
    assert list(net._compiled) == [(1, 3, 16, 24, 24)]
    shapes = [(1, 3, 16, 24, 24), (2, 3, 16, 24, 24), (1, 3, 9, 13, 11)]
    for shape in shapes:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.no_grad():
            seg, act = net.forward_with_aux(x)
            ref, ref_act = mm_net.forward_with_aux(x)
        assert seg.shape == ref.shape == (shape[0], 1) + shape[2:]
        assert act.shape == ref_act.shape == (shape[0], 2)
        assert torch.all((seg - ref).abs() <= OPENVINO_ATOL + OPENVINO_RTOL * ref.abs())
        assert torch.all((act - ref_act).abs() <= OPENVINO_ATOL + OPENVINO_RTOL * ref_act.abs())
    assert list(net._compiled) == shapes
    first = net(torch.randn(1, 3, 16, 24, 24))  # outputs are copies: a second call does not change the first
    kept = first.clone()
    net(torch.randn(1, 3, 16, 24, 24) * 5)
    assert torch.equal(first, kept)
    assert net.config["INFERENCE_PRECISION_HINT"] == "f32" and net.config["INFERENCE_NUM_THREADS"] == 1


def test_compile_cache_is_bounded(tmp_path):
    torch.manual_seed(0)
    unet = UNet3D(UNet3DConfig(in_channels=1, base_width=2, levels=2)).eval()
    net = _compiled(unet, tmp_path, (1, 1, 4, 4, 4))
    for d in range(MAX_COMPILED_SHAPES + 2):
        seg, act = net.forward_with_aux(torch.randn(1, 1, 2 + d, 6, 6))
        assert seg.shape == (1, 1, 2 + d, 6, 6) and act is None  # no ACT head
    assert len(net._compiled) == MAX_COMPILED_SHAPES
    assert (1, 1, 4, 4, 4) not in net._compiled  # least recently used went first


def test_unreadable_file_is_backend_unavailable(tmp_path):
    from breastlesionseg.errors import BackendUnavailableError

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(BackendUnavailableError, match="cannot read or compile"):
        compile_onnx(bad, 1, 1, False, 1, (1, 1, 8, 8, 8))
