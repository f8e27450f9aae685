"""select_backend: automatic order, the one "cannot run here" exception, fallback to eager with the reason."""
from __future__ import annotations

import sys

import pytest
import torch

from breastlesionseg.errors import BackendUnavailableError, InputError
from breastlesionseg.nn import MM3DUNet, MM3DUNetConfig, load_model
from breastlesionseg.runtime import BACKENDS, select_backend
from breastlesionseg.runtime import select as select_mod
from breastlesionseg.runtime.backend import Backend, RunnableNetwork
from breastlesionseg.runtime.names import AUTO_ORDER, BACKEND_CHOICES


@pytest.fixture(scope="module")
def mm_net() -> MM3DUNet:
    torch.manual_seed(0)
    return MM3DUNet(MM3DUNetConfig(in_channels=2, expansion=3, act=True)).eval()


def test_the_backend_list_is_defined_once():
    assert BACKENDS == ("eager", "openvino") and BACKEND_CHOICES == ("auto", "eager", "openvino")
    assert tuple(select_mod.BACKEND_CLASSES) == BACKENDS
    assert AUTO_ORDER["cpu"] == ("openvino", "eager") and AUTO_ORDER["cuda"] == ("eager",)
    assert select_mod.candidates("cuda", "auto") == ["eager"]
    assert select_mod.candidates("cpu", "openvino") == ["openvino", "eager"]
    assert select_mod.candidates("cpu", "eager") == ["eager"]


def test_without_a_model_folder_openvino_is_skipped_with_the_reason(mm_net):
    sel = select_backend(mm_net, "cpu", (17, 21, 19))
    assert sel.name == "eager" and sel.validation_max_abs == 0.0
    reasons = dict(sel.skipped)
    assert "model folder" in reasons["openvino"] or "not installed" in reasons["openvino"]
    assert sel.summary().startswith("eager (") and "skipped openvino:" in sel.summary()
    x = torch.randn(1, 2, 17, 21, 19)
    with torch.no_grad():
        torch.testing.assert_close(sel.network(x), mm_net(x), atol=0, rtol=0)


def test_missing_openvino_falls_back_to_eager(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    net, card = load_model(tiny_model_dir)
    sel = select_backend(net, "cpu", (16, 24, 24), model_dir=tiny_model_dir, card=card)
    assert sel.name == "eager"
    assert "openvino is not installed" in dict(sel.skipped)["openvino"]


def test_a_backend_outside_its_tolerance_is_skipped(mm_net, monkeypatch):
    class _Off(RunnableNetwork):
        def __init__(self, net):
            super().__init__(net.in_channels, net.out_channels)
            self.net = net

        def forward_with_aux(self, x):
            seg, act = self.net.forward_with_aux(x)
            return seg + 1e-2, act

    class OffBackend(Backend):
        name = "openvino"
        atol = 1e-3

        def prepare(self, module, window_shape, model_dir=None, card=None):
            return _Off(module)

    monkeypatch.setitem(select_mod.BACKEND_CLASSES, "openvino", OffBackend)
    sel = select_backend(mm_net, "cpu", (9, 11, 13))
    assert sel.name == "eager"
    assert "differ from eager by up to 0.01" in dict(sel.skipped)["openvino"]


def test_only_backend_unavailable_is_caught(mm_net, monkeypatch):
    """A genuine failure inside a backend is not hidden behind a fallback."""
    class Broken(Backend):
        name = "openvino"

        def prepare(self, module, window_shape, model_dir=None, card=None):
            raise RuntimeError("bug in the backend")

    monkeypatch.setitem(select_mod.BACKEND_CLASSES, "openvino", Broken)
    with pytest.raises(RuntimeError, match="bug in the backend"):
        select_backend(mm_net, "cpu", (9, 11, 13))


def test_bad_arguments(mm_net):
    with pytest.raises(InputError, match="unknown inference backend 'tensorrt'"):
        select_backend(mm_net, "cpu", (9, 11, 13), preference="tensorrt")
    with pytest.raises(InputError, match="window_zyx"):
        select_backend(mm_net, "cpu", (9, 11))
    assert issubclass(BackendUnavailableError, Exception) and not issubclass(BackendUnavailableError, InputError)


def test_inference_config_accepts_only_the_listed_backends():
    from breastlesionseg.inference.config import InferenceConfig

    for name in BACKEND_CHOICES:
        assert InferenceConfig(backend=name).backend == name
    with pytest.raises(InputError, match="'bf16'"):
        InferenceConfig(backend="bf16")
