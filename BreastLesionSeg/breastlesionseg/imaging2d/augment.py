"""2D training augmentation of whole batches of (image, mask) network inputs, in torch.

Horizontal flips only (the skin line of an ultrasound image is at the top), a small random affine
(rotation, zoom, shift: one ``affine_grid``/``grid_sample`` per batch; bilinear for images, nearest for
masks) and intensity changes (gamma, contrast scaling, brightness shift, Gaussian noise) so that the
model does not learn one scanner's look. Batched on purpose: MONAI's per-sample dictionary transforms
(RandAffined & co.) took ~160 ms per 128 x 128 sample on the shared 2-core training machine, more than
the network's own step; this costs a few ms per batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    """Ranges of the random changes (each drawn independently per sample).

    Attributes:
        flip_probability: horizontal flip.
        affine_probability: apply the affine at all.
        rotate_deg: rotation in [-rotate_deg, rotate_deg].
        zoom: scale in [1 - zoom, 1 + zoom].
        shift_fraction: translation as a fraction of the side.
        gamma_range: gamma in [low, high] (applied with probability ``intensity_probability``).
        contrast: multiply by [1 - contrast, 1 + contrast]; brightness: add [-brightness, brightness].
        noise_std: Gaussian noise standard deviation (with probability ``noise_probability``).
    """

    flip_probability: float = 0.5
    affine_probability: float = 0.7
    rotate_deg: float = 12.0
    zoom: float = 0.15
    shift_fraction: float = 0.06
    gamma_range: tuple[float, float] = (0.7, 1.5)
    contrast: float = 0.2
    brightness: float = 0.1
    intensity_probability: float = 0.5
    noise_std: float = 0.04
    noise_probability: float = 0.25


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def random_affine_matrices(n: int, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """(N, 2, 3) ``affine_grid`` matrices: flip, rotation, zoom, shift (identity where not drawn)."""
    angle = torch.deg2rad(_uniform(n, -config.rotate_deg, config.rotate_deg, generator))
    scale = _uniform(n, 1 - config.zoom, 1 + config.zoom, generator)
    shift = _uniform(2 * n, -2 * config.shift_fraction, 2 * config.shift_fraction, generator).view(n, 2)
    active = (torch.rand(n, generator=generator) < config.affine_probability).float()
    angle, shift = angle * active, shift * active[:, None]
    scale = 1 + (scale - 1) * active
    flip = torch.where(torch.rand(n, generator=generator) < config.flip_probability, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    matrices = torch.zeros(n, 2, 3)
    matrices[:, 0, 0], matrices[:, 0, 1], matrices[:, 0, 2] = cos * flip, -sin, shift[:, 0]
    matrices[:, 1, 0], matrices[:, 1, 1], matrices[:, 1, 2] = sin * flip, cos, shift[:, 1]
    return matrices


def augment_intensity(image: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Gamma, contrast, brightness and noise per sample of an (N, 1, H, W) batch in 0..1 (clipped to 0..1)."""
    n = image.shape[0]
    active = (torch.rand(n, generator=generator) < config.intensity_probability).float().view(n, 1, 1, 1)
    log_gamma = _uniform(n, math.log(config.gamma_range[0]), math.log(config.gamma_range[1]), generator).view(n, 1, 1, 1)
    out = image.clamp(0, 1) ** torch.exp(log_gamma * active)
    gain = 1 + _uniform(n, -config.contrast, config.contrast, generator).view(n, 1, 1, 1) * active
    offset = _uniform(n, -config.brightness, config.brightness, generator).view(n, 1, 1, 1) * active
    out = out * gain + offset
    noisy = (torch.rand(n, generator=generator) < config.noise_probability).float().view(n, 1, 1, 1)
    out = out + noisy * config.noise_std * torch.randn(out.shape, generator=generator)
    return out.clamp(0, 1)


def augment_batch(image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator,
                  config: AugmentConfig | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment an (N, 1, H, W) image batch (0..1) and its (N, 1, H, W) 0/1 mask batch consistently."""
    config = config or AugmentConfig()
    grid = F.affine_grid(random_affine_matrices(image.shape[0], config, generator), list(image.shape), align_corners=False)
    image = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    mask = F.grid_sample(mask, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return augment_intensity(image, config, generator), mask
