"""OpenVINO backend: static-shape compile cache, batches, ACT logits, and the ONNX file is not needed after prepare."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.nn import MM3DUNet, MM3DUNetConfig, UNet3D, UNet3DConfig
from breastlesionseg.runtime.openvino_backend import MAX_COMPILED_SHAPES, OpenVinoBackend

pytest.importorskip("openvino", reason="openvino not installed (optional 'fast' extra)")


@pytest.fixture(scope="module")
def mm_net() -> MM3DUNet:
    torch.manual_seed(3)
    return MM3DUNet(MM3DUNetConfig(in_channels=3, expansion=4, act=True)).eval()


def test_window_shape_compiled_at_prepare_and_shapes_cached(mm_net):
    backend = OpenVinoBackend(num_threads=1)
    net = backend.prepare(mm_net, (1, 3, 16, 24, 24))
    assert list(net._compiled) == [(1, 3, 16, 24, 24)]
    shapes = [(1, 3, 16, 24, 24), (2, 3, 16, 24, 24), (1, 3, 9, 13, 11)]
    for shape in shapes:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.no_grad():
            seg, act = net.forward_with_aux(x)
            ref, ref_act = mm_net.forward_with_aux(x)
        assert seg.shape == ref.shape == (shape[0], 1) + shape[2:]
        assert act.shape == ref_act.shape == (shape[0], 2)
        assert torch.all((seg - ref).abs() <= backend.atol + backend.rtol * ref.abs())
        assert torch.all((act - ref_act).abs() <= backend.atol + backend.rtol * ref_act.abs())
    assert list(net._compiled) == shapes
    # outputs are copies: a second call does not change the first result
    x = torch.randn(1, 3, 16, 24, 24)
    first = net(x)
    kept = first.clone()
    net(torch.randn(1, 3, 16, 24, 24) * 5)
    assert torch.equal(first, kept)


def test_compile_cache_is_bounded():
    torch.manual_seed(0)
    unet = UNet3D(UNet3DConfig(in_channels=1, base_width=2, levels=2)).eval()
    net = OpenVinoBackend(num_threads=1).prepare(unet, (1, 1, 4, 4, 4))
    for d in range(MAX_COMPILED_SHAPES + 2):
        seg, act = net.forward_with_aux(torch.randn(1, 1, 2 + d, 6, 6))
        assert seg.shape == (1, 1, 2 + d, 6, 6) and act is None  # no ACT head
    assert len(net._compiled) == MAX_COMPILED_SHAPES
    assert (1, 1, 4, 4, 4) not in net._compiled  # least recently used went first


def test_config_is_float32_and_uses_torch_threads():
    cfg = OpenVinoBackend().config()
    assert cfg["INFERENCE_PRECISION_HINT"] == "f32"
    assert cfg["INFERENCE_NUM_THREADS"] == torch.get_num_threads()
    assert OpenVinoBackend(num_threads=3).config()["INFERENCE_NUM_THREADS"] == 3


def test_rejects_foreign_networks():
    ok, why = OpenVinoBackend().supports(torch.nn.Conv3d(1, 1, 1))
    assert not ok and "breastlesionseg networks only" in why
