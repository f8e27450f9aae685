"""Every inference backend matches eager float32 PyTorch within its stated tolerance (tiny odd inputs)."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.errors import InputError
from breastlesionseg.nn import MM3DUNet, MM3DUNetConfig, UNet3D, UNet3DConfig
from breastlesionseg.nn.cec_unit import CECUnit
from breastlesionseg.runtime import BACKENDS, FUSED_ATOL, FUSED_RTOL, FastMM3DUNet
from breastlesionseg.runtime.fused_cec import FusedCEC
from breastlesionseg.runtime.select import compare_outputs

ODD_SHAPE = (1, 3, 11, 19, 13)  # odd sizes: padded to multiples of 8 inside the network


def _randomise_norms(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm3d) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
    return net.eval()


@pytest.fixture(scope="module")
def mm_net() -> MM3DUNet:
    torch.manual_seed(0)
    return _randomise_norms(MM3DUNet(MM3DUNetConfig(in_channels=3, expansion=6, act=True)))


@pytest.fixture(scope="module")
def odd_input() -> torch.Tensor:
    return torch.randn(*ODD_SHAPE, generator=torch.Generator().manual_seed(5)) * 2.0 + 0.5


@pytest.mark.parametrize("name", ["eager", "channels_last", "fused_cec", "onnxruntime", "openvino", "bf16"])
def test_backend_matches_eager_on_odd_input(name, mm_net, odd_input):
    backend = BACKENDS[name]()
    ok, why = backend.availability()
    if not ok:
        pytest.skip(why)
    runnable = backend.prepare(mm_net, (1, 3, 32, 96, 96))
    with torch.no_grad():
        ref_seg, ref_act = mm_net.forward_with_aux(odd_input)
        seg, act = runnable.forward_with_aux(odd_input)
    assert seg.shape == ref_seg.shape == (1, 1) + ODD_SHAPE[2:]
    assert act is not None and act.shape == ref_act.shape == (1, 2)
    tol = backend.atol + backend.rtol * ref_seg.abs()
    assert torch.all((seg - ref_seg).abs() <= tol), float((seg - ref_seg).abs().max())
    assert torch.all((act - ref_act).abs() <= backend.atol + backend.rtol * ref_act.abs())
    ok, worst, msg = compare_outputs(backend, runnable, mm_net, odd_input)
    assert ok, msg
    if backend.exact:
        assert worst <= 1e-3  # all float32 backends are within round-off of eager
    # the logits are not trivially small: the tolerance is meaningful
    assert float(ref_seg.abs().max()) > 0.05


def test_fused_unit_is_exact_for_offset_inputs_and_batches():
    """Folded InstanceNorm from input mean/covariance stays accurate for large means, batch of 2, no residual."""
    torch.manual_seed(1)
    for cin, cout in ((4, 4), (4, 6)):
        unit = _randomise_norms(CECUnit(cin, cout, expansion=5))
        x = torch.randn(2, cin, 7, 9, 11, generator=torch.Generator().manual_seed(2)) * 3.0 + 50.0
        with torch.no_grad():
            ref = unit(x)
            got = FusedCEC(unit)(x)
        assert got.shape == ref.shape
        assert unit.use_residual == (cin == cout)
        err = (got - ref).abs()
        assert torch.all(err <= FUSED_ATOL + FUSED_RTOL * ref.abs()), float(err.max())
        # and the two batch items are normalised separately (differs from one shared normalisation)
        with torch.no_grad():
            shared = FusedCEC(unit)(x.transpose(0, 1).reshape(1, cin, 14, 9, 11))
        assert not torch.allclose(shared.reshape(cout, 2, 7, 9, 11).transpose(0, 1), ref, atol=1e-3)


def test_fused_detects_a_wrong_weight(mm_net, odd_input):
    """The comparison can fail: a fused network with one perturbed weight is rejected."""
    import copy

    broken = copy.deepcopy(mm_net)
    with torch.no_grad():
        broken.encoders[0][1].separable.depthwise.weight[0, 0, 1, 1, 1] += 0.5
    backend = BACKENDS["fused_cec"]()
    ok, worst, msg = compare_outputs(backend, backend.prepare(broken, ODD_SHAPE), mm_net, odd_input)
    assert not ok and worst > FUSED_ATOL and "differ from eager" in msg


def test_fused_supports_only_instance_leakyrelu_mm3dunet():
    backend = BACKENDS["fused_cec"]()
    ok, why = backend.supports(UNet3D(UNet3DConfig(in_channels=1, base_width=4, levels=2)))
    assert not ok and "MM3DUNet" in why
    ok, why = backend.supports(MM3DUNet(MM3DUNetConfig(in_channels=1, norm="batch", expansion=2)))
    assert not ok and "norm='batch'" in why
    with pytest.raises(InputError, match="activation='relu'"):
        FastMM3DUNet(MM3DUNet(MM3DUNetConfig(in_channels=1, activation="relu", expansion=2)))


def test_fast_network_keeps_the_contract_without_act(odd_input):
    torch.manual_seed(3)
    net = _randomise_norms(MM3DUNet(MM3DUNetConfig(in_channels=3, expansion=2, act=False, up_kernel_size=2)))
    fast = FastMM3DUNet(net)
    with torch.no_grad():
        seg, act = fast.forward_with_aux(odd_input)
        ref = net(odd_input)
    assert act is None
    assert seg.is_contiguous() and seg.dtype == torch.float32
    assert torch.allclose(fast(odd_input), ref, atol=FUSED_ATOL, rtol=FUSED_RTOL)
    with pytest.raises(ValueError, match="channels"):
        fast(torch.zeros(1, 2, 9, 9, 9))
