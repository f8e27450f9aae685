"""The fused C++ CEC kernel (runtime/native/cec_fused.cpp) against the network's own eager units."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.nn.cec_unit import CECUnit
from breastlesionseg.nn.config import MM3DUNetConfig
from breastlesionseg.nn.mm3dunet import MM3DUNet
from breastlesionseg.runtime import native_cec
from breastlesionseg.runtime.select import select_backend

pytestmark = pytest.mark.skipif(bool(native_cec.native_unavailable_reason()),
                                reason=native_cec.native_unavailable_reason() or "available")


@pytest.fixture(scope="module")
def kernels():
    return native_cec.native_kernels()  # built once per machine (~35 s on 2 cores), then cached


def _unit(cin: int, cout: int, t: int, seed: int = 0) -> CECUnit:
    torch.manual_seed(seed)
    unit = CECUnit(cin, cout, t).eval()
    with torch.no_grad():  # non-trivial norm parameters, so a wrong scale or shift shows
        for m in unit.modules():
            if isinstance(m, torch.nn.InstanceNorm3d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return unit


@pytest.mark.slow
@pytest.mark.parametrize("width", [192, 96])  # 64-column tiles / 32-column tiles, each with an interior tile
@pytest.mark.parametrize("cin,t,cout", [(1, 12, 8), (3, 12, 8), (8, 12, 8), (8, 12, 16), (16, 12, 16), (16, 1, 8),
                                        (8, 1, 8), (64, 1, 32), (4, 12, 4), (64, 12, 64)])
def test_fused_unit_matches_the_eager_unit(kernels, cin, t, cout, width):
    unit = _unit(cin, cout, t)
    fused = native_cec.NativeCEC(unit, kernels, native_cec._Workspace(kernels))
    fused.stream_min_bytes = 0 if width == 192 else 1 << 40  # streaming and plain output stores
    x = torch.randn(2, cin, 5, 16, width, generator=torch.Generator().manual_seed(1)) * 2.0 + 0.5  # batch 2, odd depth
    assert fused.supported and fused.fits(x)
    with torch.no_grad():
        ref, got = unit(x), fused(x)
    assert got.shape == ref.shape
    assert float((got - ref).abs().max()) <= 5e-5 * max(1.0, float(ref.abs().max()))


@pytest.mark.slow
def test_shapes_the_kernel_cannot_tile_run_the_eager_unit_exactly(kernels):
    unit = _unit(8, 8, 12)
    fused = native_cec.NativeCEC(unit, kernels, native_cec._Workspace(kernels))
    x = torch.randn(1, 8, 4, 16, 48)  # W % 32 != 0
    assert not fused.fits(x)
    with torch.no_grad():
        assert torch.equal(fused(x), unit(x))


@pytest.mark.slow
def test_whole_network_and_automatic_selection(kernels):
    torch.manual_seed(0)
    net = MM3DUNet(MM3DUNetConfig(in_channels=1, base_width=8, expansion=12)).eval()
    fast = native_cec.NativeMM3DUNet(net, kernels)
    x = torch.randn(1, 1, 8, 16, 64)
    assert fast.fused_units(tuple(x.shape)) == (8, 14)  # the level-0 and level-1 encoder and decoder units
    assert fast.head_folded  # the 1x1x1 head runs in the last unit's kernel
    with torch.no_grad():
        ref, ref_act = net.forward_with_aux(x)
    got, act = fast.forward_with_aux(x)
    assert float((got - ref).abs().max()) < 1e-4 and float((act - ref_act).abs().max()) < 1e-4
    # the automatic order takes it for a tile-aligned window, and refuses the demo model's small window
    assert select_backend(net, "cpu", (16, 64, 128)).name == "native_cec"
    small = select_backend(net, "cpu", (16, 32, 32))
    assert small.name != "native_cec" and any(n == "native_cec" and "tile" in why for n, why in small.rejected)


@pytest.mark.slow
def test_kept_intermediates_never_leak_into_what_the_network_returns(kernels):
    torch.manual_seed(0)
    net = MM3DUNet(MM3DUNetConfig(in_channels=1, base_width=8, expansion=12)).eval()
    fast = native_cec.NativeMM3DUNet(net, kernels)
    x1, x2 = torch.randn(1, 1, 8, 16, 64), torch.randn(1, 1, 8, 16, 64) * 2.0
    seg1, act1 = fast.forward_with_aux(x1)
    kept1, kept_act1 = seg1.clone(), act1.clone()
    seg2, _ = fast.forward_with_aux(x2)  # reuses every intermediate buffer of the first pass
    assert torch.equal(seg1, kept1) and torch.equal(act1, kept_act1)
    with torch.no_grad():
        assert float((seg2 - net(x2)).abs().max()) < 1e-4
    assert torch.equal(fast.forward_with_aux(x1)[0], kept1)  # same input, same buffers: identical output
    fast.release_buffers()
    assert torch.equal(fast.forward_with_aux(x1)[0], kept1)  # freed buffers come back


@pytest.mark.slow
def test_units_the_kernel_does_not_take_are_refused_or_left_to_eager(kernels):
    from breastlesionseg.errors import InputError

    strided = CECUnit(8, 8, 12, stride=2).eval()
    with pytest.raises(InputError, match="stride 1"):
        native_cec.NativeCEC(strided, kernels, native_cec._Workspace(kernels))
    odd = native_cec.NativeCEC(_unit(5, 7, 3), kernels, native_cec._Workspace(kernels))  # no instantiation for 5 -> 15 -> 7
    assert not odd.supported and not odd.fits(torch.zeros(1, 5, 2, 8, 64))


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(2, 3, 4, 6, 64), (1, 2, 2, 4, 70)])  # 70: the scalar tail after 32-wide blocks
def test_kernel_max_pooling_equals_torch(kernels, shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    assert torch.equal(kernels.maxpool2(x), torch.nn.MaxPool3d(2)(x))
    out = torch.full((shape[0], shape[1], *(s // 2 for s in shape[2:])), float("nan"))
    assert kernels.maxpool2(x, out).data_ptr() == out.data_ptr()  # written into the given tensor
    assert torch.equal(out, torch.nn.MaxPool3d(2)(x))
    with pytest.raises(RuntimeError, match="out must be"):
        kernels.maxpool2(x, torch.empty(1))


@pytest.mark.slow
def test_networks_whose_full_resolution_units_have_no_kernel_are_refused(kernels):
    torch.manual_seed(0)
    net = MM3DUNet(MM3DUNetConfig(in_channels=2, expansion=3)).eval()  # 2 -> 6 -> 8: not instantiated
    sel = select_backend(net, "cpu", (8, 16, 64))
    assert sel.name != "native_cec"
    assert any(n == "native_cec" and "full-resolution" in why for n, why in sel.rejected)


@pytest.mark.slow
@pytest.mark.parametrize("cin,cout,shape,bias", [(16, 8, (1, 16, 4, 6, 32), False), (5, 11, (2, 5, 3, 5, 16), True)])
def test_kernel_transposed_convolution_matches_torch(kernels, cin, cout, shape, bias):
    torch.manual_seed(4)
    up = torch.nn.ConvTranspose3d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=bias).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        ref = up(x)
        got = kernels.conv_transpose3x3_s2(x, up.weight, up.bias)
        into = torch.full_like(ref, float("nan"))
        kernels.conv_transpose3x3_s2(x, up.weight, up.bias, into)
    assert got.shape == ref.shape
    assert float((got - ref).abs().max()) < 1e-5
    assert torch.equal(into, got)


@pytest.mark.slow
def test_a_pair_of_inputs_is_read_as_their_concatenation(kernels):
    unit = _unit(16, 8, 1)  # the full-resolution decoder's first unit: (8 upsampled + 8 skip) -> 16 -> 8
    fused = native_cec.NativeCEC(unit, kernels, native_cec._Workspace(kernels))
    up, skip = torch.randn(2, 8, 3, 8, 64) * 3.0, torch.randn(2, 8, 3, 8, 64) + 1.0
    with torch.no_grad():
        ref = unit(torch.cat([up, skip], dim=1))
        assert float((fused((up, skip)) - ref).abs().max()) <= 5e-5 * max(1.0, float(ref.abs().max()))
        odd = (up[..., :48], skip[..., :48])  # not tile-aligned: concatenated and run by the eager unit
        assert torch.equal(fused(odd), unit(torch.cat(odd, dim=1)))


@pytest.mark.slow
@pytest.mark.parametrize("head_out,bias", [(1, True), (3, False)])
def test_a_folded_head_equals_the_head_after_the_unit(kernels, head_out, bias):
    unit = _unit(8, 8, 1)  # the full-resolution decoder's last unit: 8 -> 8 -> 8, residual
    torch.manual_seed(5)
    head = torch.nn.Conv3d(8, head_out, 1, bias=bias).eval()
    fused = native_cec.NativeCEC(unit, kernels, native_cec._Workspace(kernels), keep_output=True)
    fused.stream_min_bytes = 0 if head_out == 1 else 1 << 40
    fused.fold_head(head)
    x = torch.randn(2, 8, 3, 16, 64) * 2.0
    with torch.no_grad():
        ref = head(unit(x))
        got = fused(x)
        assert got.shape == ref.shape == (2, head_out, 3, 16, 64)
        assert float((got - ref).abs().max()) <= 5e-5 * max(1.0, float(ref.abs().max()))
        assert fused(x).data_ptr() != got.data_ptr()  # the network's output: fresh, not a kept buffer
        odd = x[..., :48]  # not tile-aligned: the eager unit, then the head
        assert torch.equal(fused(odd), head(unit(odd)))


def test_only_1x1x1_heads_after_narrow_units_are_folded(kernels):
    from breastlesionseg.errors import InputError

    narrow, wide = _unit(8, 8, 1), _unit(16, 16, 1)
    assert native_cec.NativeCEC.can_fold(narrow, torch.nn.Conv3d(8, 1, 1))
    assert not native_cec.NativeCEC.can_fold(narrow, torch.nn.Conv3d(8, 1, 3, padding=1))
    assert not native_cec.NativeCEC.can_fold(narrow, torch.nn.Conv3d(8, 9, 1))  # more than 8 outputs
    assert not native_cec.NativeCEC.can_fold(wide, torch.nn.Conv3d(16, 1, 1))  # more than 8 unit outputs
    with pytest.raises(InputError, match="cannot fold"):
        native_cec.NativeCEC(wide, kernels, native_cec._Workspace(kernels)).fold_head(torch.nn.Conv3d(16, 1, 1))
