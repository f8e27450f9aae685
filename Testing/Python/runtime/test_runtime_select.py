"""select_backend: order, validation against eager, fallbacks (missing onnxruntime, broken backend)."""
from __future__ import annotations

import sys

import pytest
import torch

from breastlesionseg.errors import InputError
from breastlesionseg.nn import MM3DUNet, MM3DUNetConfig, UNet3D, UNet3DConfig
from breastlesionseg.runtime import select as select_mod
from breastlesionseg.runtime import select_backend
from breastlesionseg.runtime.backend import Backend, RunnableNetwork


@pytest.fixture(scope="module")
def mm_net() -> MM3DUNet:
    torch.manual_seed(0)
    return MM3DUNet(MM3DUNetConfig(in_channels=2, expansion=3, act=True)).eval()


@pytest.fixture(scope="module")
def unet() -> UNet3D:
    torch.manual_seed(0)
    return UNet3D(UNet3DConfig(in_channels=2, base_width=4, levels=3)).eval()


def test_auto_picks_the_first_validated_backend_and_says_which(mm_net):
    sel = select_backend(mm_net, "cpu", (17, 21, 19))
    # native_cec comes first but refuses a window its kernel cannot tile (before building anything)
    assert select_mod.CPU_ORDER[:2] == ("native_cec", "openvino")
    assert sel.name == "openvino"
    assert [why for name, why in sel.rejected if name == "native_cec" and ("tile" in why or "unavailable" in why
                                                                          or "needs" in why)]
    assert sel.validation_max_abs <= sel.backend.atol + 1e-2
    assert sel.name in sel.summary()
    x = torch.randn(1, 2, 17, 21, 19)
    with torch.no_grad():
        seg, act = sel.network.forward_with_aux(x)
        ref, ref_act = mm_net.forward_with_aux(x)
    assert torch.allclose(seg, ref, atol=1e-3, rtol=1e-3) and torch.allclose(act, ref_act, atol=1e-3, rtol=1e-3)
    assert sel.to_dict()["backend"] == sel.name


def test_falls_back_to_eager_when_the_runtimes_are_missing(unet, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    monkeypatch.setitem(sys.modules, "openvino", None)
    sel = select_backend(unet, "cpu", (9, 11, 13), preference="onnxruntime")
    assert sel.name == "eager"
    reasons = dict(sel.rejected)
    assert "onnxruntime" in reasons and "unavailable" in reasons["onnxruntime"]
    assert "openvino" in reasons and "unavailable" in reasons["openvino"]
    assert "fused_cec" in reasons and "MM3DUNet" in reasons["fused_cec"]
    assert sel.validation_max_abs == 0.0


def test_a_backend_outside_its_tolerance_is_rejected(mm_net, monkeypatch):
    class _Off(RunnableNetwork):
        backend_name = "off"

        def __init__(self, net):
            super().__init__(net.in_channels, net.out_channels)
            self.net = net

        def forward_with_aux(self, x):
            seg, act = self.net.forward_with_aux(x)
            return seg + 1e-2, act

    class OffBackend(Backend):
        name = "fused_cec"
        description = "deliberately wrong"
        atol = 1e-3
        rtol = 0.0

        def prepare(self, module, example_shape):
            return _Off(module)

    monkeypatch.setitem(select_mod.BACKENDS, "fused_cec", OffBackend)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setitem(sys.modules, "openvino", None)
    sel = select_backend(mm_net, "cpu", (9, 11, 13))
    assert sel.name == "eager"
    assert "differ from eager" in dict(sel.rejected)["fused_cec"]


def test_measure_times_the_candidates(unet):
    sel = select_backend(unet, "cpu", (1, 2, 9, 11, 13), preference=["channels_last", "eager"], measure=True,
                         repeats=1)
    assert set(sel.timings_s) >= {"channels_last", "eager"}
    assert all(t > 0 for t in sel.timings_s.values())
    assert sel.timings_s[sel.name] == min(sel.timings_s.values())


def test_bf16_only_when_named(mm_net):
    sel = select_backend(mm_net, "cpu", (9, 11, 13), preference="bf16")
    assert sel.name == "bf16" and not sel.backend.exact
    assert sel.validation_max_abs > 0.0  # reduced precision really differs


def test_bad_arguments(mm_net):
    with pytest.raises(InputError, match="unknown backend preference 'tensorrt'"):
        select_backend(mm_net, "cpu", (9, 11, 13), preference="tensorrt")
    with pytest.raises(InputError, match="patch_shape"):
        select_backend(mm_net, "cpu", (9, 11))


def test_cuda_device_only_considers_cuda_backends(mm_net):
    assert select_mod._candidates("cuda", "auto") == ["eager"]
    assert select_mod._candidates("cpu", "onnxruntime")[0] == "onnxruntime"
    assert select_mod._candidates("cpu", "auto")[:3] == ["native_cec", "openvino", "onnxruntime"]
