"""MM-3DUNet and the dense 3D U-Net: output contract, odd sizes, gradients, ACT, configs, TorchScript."""
from __future__ import annotations

import pytest
import torch

from breastlesionseg.errors import InputError
from breastlesionseg.nn import MM3DUNet, MM3DUNetConfig, UNet3D, UNet3DConfig, build_network, config_from_dict
from breastlesionseg.nn.cec_unit import CECUnit

SMALL_MM = dict(in_channels=2, expansion=2, base_width=4)
SMALL_UNET = dict(in_channels=2, base_width=4, levels=3, widths=None)


def _nets(act: bool):
    torch.manual_seed(0)
    return [MM3DUNet(MM3DUNetConfig(**SMALL_MM, act=act)), UNet3D(UNet3DConfig(**SMALL_UNET, act=act))]


@pytest.mark.parametrize("shape", [(1, 2, 17, 35, 33), (2, 2, 9, 20, 21), (1, 2, 3, 4, 9), (1, 2, 16, 16, 16)])
def test_output_shape_equals_input_shape_for_odd_sizes(shape):
    for net in _nets(act=True):
        net.eval()
        seg, act = net.forward_with_aux(torch.randn(shape))
        assert seg.shape == (shape[0], 1) + shape[2:]
        assert act.shape == (shape[0], 2)
        assert torch.isfinite(seg).all()


def test_padding_is_cropped_back_exactly():
    """A window that needs padding gives the logits of the same window padded by hand, cropped."""
    torch.manual_seed(1)
    net = MM3DUNet(MM3DUNetConfig(**SMALL_MM, act=False, pad_mode="constant")).eval()
    x = torch.randn(1, 2, 13, 14, 16)  # pads to 16 x 16 x 16: (1, 2), (1, 1), (0, 0)
    padded = torch.nn.functional.pad(x, [0, 0, 1, 1, 1, 2])
    with torch.no_grad():
        full = net(padded)
        out = net(x)
    torch.testing.assert_close(out, full[:, :, 1:14, 1:15, :])


def test_too_small_input_gives_clear_error():
    net = MM3DUNet(MM3DUNetConfig(**SMALL_MM))
    with pytest.raises(ValueError, match="too small"):
        net(torch.randn(1, 2, 8, 5, 8))
    with pytest.raises(ValueError, match="channels"):
        net(torch.randn(1, 3, 9, 9, 9))
    with pytest.raises(ValueError, match="5-D"):
        net(torch.randn(2, 9, 9, 9))


def test_gradient_reaches_every_parameter():
    for net in _nets(act=True):
        net.train()
        x = torch.randn(2, 2, 9, 18, 17)
        seg, act = net.forward_with_aux(x)
        gen = torch.Generator().manual_seed(3)
        loss = (torch.sigmoid(seg) * torch.randn(seg.shape, generator=gen)).mean() + (act * torch.tensor([1.0, -2.0])).sum()
        loss.backward()
        for name, p in net.named_parameters():
            assert p.grad is not None, f"{type(net).__name__}.{name} gets no gradient"
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().max() > 0, f"{type(net).__name__}.{name} has an all-zero gradient"


def test_act_logits_none_when_act_off():
    for net in _nets(act=False):
        seg, act = net.forward_with_aux(torch.randn(1, 2, 9, 9, 9))
        assert act is None and net.act_head is None
        torch.testing.assert_close(net.eval()(torch.ones(1, 2, 9, 9, 9)), net.forward_with_aux(torch.ones(1, 2, 9, 9, 9))[0])


def test_mm3dunet_layout_matches_paper():
    net = MM3DUNet(MM3DUNetConfig(in_channels=3, expansion=12))
    # four encoder modules (three + bottleneck) of two CEC units, channels doubling from 8
    modules = list(net.encoders) + [net.bottleneck]
    assert len(modules) == 4
    assert [m[-1].out_channels for m in modules] == [8, 16, 32, 64]
    assert all(len(m) == 2 and all(isinstance(u, CECUnit) for u in m) for m in modules)
    assert modules[0][0].hidden_channels == 3 * 12 and modules[1][1].hidden_channels == 16 * 12
    # residual only where C_in == C_out: the second unit of each module
    assert [m[0].use_residual for m in modules] == [False] * 4
    assert [m[1].use_residual for m in modules] == [True] * 4
    # mirrored decoder: transposed convs 64->32->16->8, decoder units with t = 1
    assert [lvl.up.out_channels for lvl in net.decoder] == [32, 16, 8]
    assert all(isinstance(lvl.up, torch.nn.ConvTranspose3d) for lvl in net.decoder)
    assert net.decoder[0].units[0].hidden_channels == 64  # (32 up + 32 skip) x t_d=1
    assert net.head.out_channels == 1 and net.head.kernel_size == (1, 1, 1)
    assert net.act_head is not None and net.act_head.conv.in_channels == 64


def test_bottleneck_is_hookable_for_gradcam():
    net = MM3DUNet(MM3DUNetConfig(**SMALL_MM)).eval()
    seen = {}

    def hook(module, inputs, output):
        seen["shape"] = tuple(output.shape)

    handle = net.bottleneck.register_forward_hook(hook)
    net(torch.randn(1, 2, 17, 35, 33))
    handle.remove()
    # 17x35x33 padded to 24x40x40, three poolings -> 3x5x5, 4*8 = 32 channels
    assert seen["shape"] == (1, 32, 3, 5, 5)


@pytest.mark.parametrize(
    "arch,field,value",
    [
        ("mm3dunet", "expansion", 0),
        ("mm3dunet", "expansion", 2.5),
        ("mm3dunet", "levels", 0),
        ("mm3dunet", "norm", "layer"),
        ("mm3dunet", "activation", "tanh"),
        ("mm3dunet", "act", "yes"),
        ("mm3dunet", "up_kernel_size", 4),
        ("mm3dunet", "in_channels", True),
        ("unet3d", "widths", [8, 16]),
        ("unet3d", "channel_pattern", "fancy"),
        ("unet3d", "negative_slope", 2.0),
    ],
)
def test_config_validation_names_field_and_value(arch, field, value):
    with pytest.raises(ValueError) as info:
        config_from_dict(arch, {field: value})
    assert f"'{field}'" in str(info.value)
    assert repr(value) in str(info.value)
    assert isinstance(info.value, InputError)


def test_config_unknown_field_and_arch():
    with pytest.raises(InputError, match="expansoin"):
        config_from_dict("mm3dunet", {"expansoin": 6})
    with pytest.raises(InputError, match="vnet"):
        build_network("vnet")


def test_config_dict_round_trip():
    cfg = UNet3DConfig.table1(in_channels=2)
    assert cfg.widths_list() == [13, 18, 36, 72, 144]
    again = config_from_dict("unet3d", cfg.to_dict())
    assert again == cfg and isinstance(again.widths, tuple)


def test_torchscript_matches_eager():
    for net in _nets(act=True):
        net.eval()
        scripted = torch.jit.script(net)
        x = torch.randn(1, 2, 11, 19, 17)
        with torch.no_grad():
            s1, a1 = net.forward_with_aux(x)
            s2, a2 = scripted.forward_with_aux(x)
        torch.testing.assert_close(s1, s2, atol=1e-5, rtol=0)
        torch.testing.assert_close(a1, a2, atol=1e-5, rtol=0)
