"""MONAI augmentation of training patches (Wang et al. 2025): +-15 deg axial rotation, LR flip, +-20 % intensity.

Patches are dicts ``{"image": (C, D, H, W), "label": (1, D, H, W)}`` on the model grid with array
axes (z, y, x): the axial plane is (y, x), i.e. MONAI's ``range_x`` rotation (about array axis 0),
and left-right is array axis 2 (x).
"""
from __future__ import annotations

import math

from monai.transforms import Compose, EnsureTyped, RandFlipd, RandRotated, RandScaleIntensityd


def build_augmentation(rotate_deg: float = 15.0, flip_prob: float = 0.5, intensity_scale: float = 0.2) -> Compose:
    """The training augmentation as a MONAI ``Compose`` (applied after the patch crop).

    Args:
        rotate_deg: uniform random rotation in [-rotate_deg, +rotate_deg] degrees in the axial plane.
        flip_prob: probability of a left-right flip.
        intensity_scale: image multiplied by ``1 + U(-s, s)`` (all channels together).

    Returns:
        A ``Compose`` whose randomness is seeded with ``set_random_state``.
    """
    transforms = []
    if rotate_deg > 0:
        r = math.radians(rotate_deg)
        transforms.append(RandRotated(keys=("image", "label"), range_x=(-r, r), prob=1.0, keep_size=True,
                                      mode=("bilinear", "nearest"), padding_mode="zeros"))
    if flip_prob > 0:
        transforms.append(RandFlipd(keys=("image", "label"), spatial_axis=2, prob=flip_prob))
    if intensity_scale > 0:
        transforms.append(RandScaleIntensityd(keys="image", factors=intensity_scale, prob=1.0))
    transforms.append(EnsureTyped(keys=("image", "label"), track_meta=False))
    return Compose(transforms)
