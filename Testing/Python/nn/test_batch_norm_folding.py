"""Batch-norm folding (nn/batch_norm_folding.py): every conv -> batch-norm pair of the package's 2D networks is
folded, the outputs are unchanged on other inputs than the example, and an unsafe fold is refused."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from breastlesionseg.errors import ModelError
from breastlesionseg.nn.batch_norm_folding import fold_batch_norms
from breastlesionseg.nn.config2d import ResNeXtClassifier2DConfig
from breastlesionseg.nn.factory2d import build_network_2d
from breastlesionseg.nn.resnext_classifier2d import ResNeXtClassifier2D


def _build(arch: str, config: dict) -> nn.Module:
    if arch == "resnext_classifier2d":  # the crop classifier is not a segmentation architecture of the factory
        return ResNeXtClassifier2D(ResNeXtClassifier2DConfig.from_dict(config))
    return build_network_2d(arch, config)


def _randomise_norms(network: nn.Module, seed: int) -> nn.Module:
    """Non-trivial running statistics and affine parameters, as after training."""
    generator = torch.Generator().manual_seed(seed)
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator))
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator))
    return network.eval()


def _norm_count(network: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in network.modules())


@pytest.mark.parametrize("arch, config, in_channels, size", [
    ("attention_unet2d", {"widths": [4, 8, 12], "attention": "cbam"}, 1, 48),
    ("resnext_classifier2d", {"in_channels": 2, "stem_channels": 32, "planes": [16, 32], "strides": [1, 2],
                              "groups": 32, "base_width": 4}, 2, 37),
])
def test_every_batch_norm_is_folded_and_outputs_are_unchanged(arch, config, in_channels, size):
    torch.manual_seed(0)
    network = _randomise_norms(_build(arch, config), seed=1)
    n_norms = _norm_count(network)
    example = torch.rand(2, in_channels, size, size, generator=torch.Generator().manual_seed(2))
    folded, n_folded = fold_batch_norms(network, example)
    assert n_folded == n_norms > 0
    assert _norm_count(folded) == 0 and _norm_count(network) == n_norms  # the original is left as it was
    other = torch.rand(3, in_channels, size, size, generator=torch.Generator().manual_seed(3)) * 5.0
    with torch.no_grad():
        expected, actual = network(other), folded(other)
    if arch == "attention_unet2d":
        pairs = [(expected.seg_logits, actual.seg_logits), (expected.malignancy_logit, actual.malignancy_logit),
                 (expected.lesion_logit, actual.lesion_logit)]
    else:
        pairs = [(expected, actual)]
    for e, a in pairs:
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)


class _ConvUsedTwice(nn.Module):
    """The convolution's output feeds the batch norm and a residual sum: folding would change the sum."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.norm(y) + y


def test_a_fold_that_changes_the_outputs_is_refused():
    network = _randomise_norms(_ConvUsedTwice(), seed=4)
    example = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(5))
    folded, n_folded = fold_batch_norms(network, example)
    assert folded is network and n_folded == 0
    assert _norm_count(folded) == 1


def test_a_network_in_training_mode_is_refused():
    network = build_network_2d("attention_unet2d", {"widths": [4, 8, 12]}).train()
    with pytest.raises(ModelError, match="training mode"):
        fold_batch_norms(network, torch.rand(1, 1, 32, 32))
