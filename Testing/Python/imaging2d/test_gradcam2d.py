"""Grad-CAM heat maps of the 2D multi-task networks: equal to MONAI's plain Grad-CAM, cache follows the weights."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from breastlesionseg.imaging2d.gradcam2d import HEADS, _HeadLogit, _layer_name, gradcam_map
from breastlesionseg.nn.factory2d import build_network_2d


@pytest.fixture()
def network():
    torch.manual_seed(7)
    return build_network_2d("attention_unet2d", {"widths": [4, 8, 12], "attention": "both"}).eval()


def _plain_gradcam(model, image, head):
    """MONAI Grad-CAM on a copy with every parameter and the input requiring gradients (the textbook way)."""
    from monai.visualize import GradCAM

    net = copy.deepcopy(model).float().eval()
    net.requires_grad_(True)
    cam = GradCAM(_HeadLogit(net, head), target_layers=_layer_name(net), postprocessing=lambda m: m)
    with torch.enable_grad():
        heat = cam(image[None].clone().requires_grad_(True), class_idx=0)
    heat = np.maximum(heat[0, 0].detach().numpy(), 0.0)
    return heat / heat.max() if heat.max() > 0 else heat


@pytest.mark.parametrize("head", HEADS)
def test_heat_map_equals_the_plain_grad_cam(network, head):
    image = torch.randn(1, 33, 33, generator=torch.Generator().manual_seed(1))[:, :32, :32].contiguous()
    heat = gradcam_map(network, image, head)
    assert heat.shape == (32, 32) and heat.dtype == np.float32
    assert 0.0 <= heat.min() and heat.max() == pytest.approx(1.0)
    np.testing.assert_allclose(heat, _plain_gradcam(network, image, head), atol=1e-5)


def test_changed_weights_give_a_fresh_map_and_the_callers_model_gets_no_hooks(network):
    image = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(2))
    before = gradcam_map(network, image)
    with torch.no_grad():
        for parameter in network.gradcam_layer.parameters():
            parameter.mul_(-1.5)
    after = gradcam_map(network, image)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _plain_gradcam(network, image, "malignancy"), atol=1e-5)
    assert not any(m._forward_hooks or m._backward_hooks for m in network.modules())
    assert not any(p.grad is not None for p in network.parameters())


@pytest.mark.parametrize("arch,config", [("attention_unet2d", {"widths": [4, 8, 12], "attention": "both"}),
                                         ("u2net_lite", None)])
@pytest.mark.parametrize("head", HEADS)
def test_heads_only_gradcam_equals_the_textbook_one_and_keeps_the_forward_output(arch, config, head):
    from breastlesionseg.imaging2d.gradcam2d import forward_with_gradcam

    torch.manual_seed(9)
    model = build_network_2d(arch, config).eval()
    batch = torch.rand(3, 1, 64, 64)
    output, heat = forward_with_gradcam(model, batch, head)
    with torch.inference_mode():
        expected_output = model(batch)
    for got, expected in zip(output, expected_output):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(heat, _plain_gradcam(model, batch[0], head), atol=1e-5)
    assert heat.shape == (64, 64) and heat.max() == pytest.approx(1.0)
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())
