"""MONAI augmentation of training patches.

* geometry and intensity (Wang et al. 2025): +-15 deg axial rotation, left-right flip, +-20 % intensity;
* acquisition (optional, ``acquisition_prob > 0``; the image-quality augmentations of nnU-Net, Isensee et al.
  2021, adapted to anisotropic breast MRI): Gaussian noise, a slice-profile blur along z (thick slices),
  simulated low resolution, gamma contrast and a smooth bias field. The phantom generator draws these
  factors too, but only within its own ranges; augmenting on top stops the network from relying on the
  generator's exact noise, slice profile and contrast (its out-of-distribution weakness).

* subtraction only (optional, ``subtraction_only_prob > 0``): a patch shows the network only its subtraction
  channels, the others set to 0 (their normalised mean), so it learns to find a lesion from the subtraction alone.
  Without fat suppression a small lesion disappears among the fat in ``pre`` and ``post1`` but stays plain in
  ``sub1`` (``benchmarks/probe_fat_suppression_contrast.py``).

* zoom out (optional, ``zoom_out_prob > 0``): the patch's content shrunk by a factor in :data:`ZOOM_OUT_RANGE`
  (edges repeated to keep the patch size), so lesions look smaller than the phantoms drew them. A network that
  misses small lesions finds them on a finer grid (``experiments/inference_grid_spacing.md``): their size in voxels
  is what it lacks.

Patches are dicts ``{"image": (C, D, H, W), "label": (1, D, H, W)}`` on the model grid with array
axes (z, y, x): the axial plane is (y, x), i.e. MONAI's ``range_x`` rotation (about array axis 0),
left-right is array axis 2 (x), and the slice direction is array axis 0 (MONAI's ``sigma_x``).
Images are z-score normalised, so noise and blur strengths are in z-score units and voxels.
"""
from __future__ import annotations

import math
from typing import Any, Hashable, Mapping, Sequence

from monai.transforms import (
    Compose,
    EnsureTyped,
    RandAdjustContrastd,
    RandBiasFieldd,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandRotated,
    RandScaleIntensityd,
    RandSimulateLowResolutiond,
    RandZoomd,
)
from monai.transforms.transform import MapTransform, RandomizableTransform

#: largest standard deviation of the added Gaussian noise (z-score units)
NOISE_STD_MAX = 0.1
#: Gaussian blur sigma ranges (voxels) along the slice direction and in plane: a thick slice profile
SLICE_BLUR_SIGMA_VOXELS = (0.5, 1.5)
IN_PLANE_BLUR_SIGMA_VOXELS = (0.0, 0.5)
#: zoom range of the simulated low resolution (down-sampled by this factor, then up-sampled back)
LOW_RESOLUTION_ZOOM = (0.5, 1.0)
#: gamma range of the contrast change (intensity statistics kept)
GAMMA_RANGE = (0.7, 1.5)
#: range of the bias field's polynomial coefficients
BIAS_COEFF_RANGE = (0.0, 0.1)
#: zoom factors of the zoom-out augmentation (content shrunk to this fraction of its size, all axes alike)
ZOOM_OUT_RANGE = (0.7, 1.0)


def acquisition_transforms(prob: float) -> list:
    """Image-only acquisition augmentations, each applied with probability ``prob`` (labels untouched)."""
    return [
        RandGaussianNoised(keys="image", prob=prob, mean=0.0, std=NOISE_STD_MAX),
        RandGaussianSmoothd(keys="image", prob=prob, sigma_x=SLICE_BLUR_SIGMA_VOXELS,
                            sigma_y=IN_PLANE_BLUR_SIGMA_VOXELS, sigma_z=IN_PLANE_BLUR_SIGMA_VOXELS),
        RandSimulateLowResolutiond(keys="image", prob=prob, zoom_range=LOW_RESOLUTION_ZOOM),
        RandAdjustContrastd(keys="image", prob=prob, gamma=GAMMA_RANGE, retain_stats=True),
        RandBiasFieldd(keys="image", prob=prob, coeff_range=BIAS_COEFF_RANGE),
    ]


class RandBlankChannelsd(RandomizableTransform, MapTransform):
    """With probability ``prob``, set the given channels of the ``keys`` images to 0 (all of them together).

    Args:
        keys: the image keys (``(C, D, H, W)`` tensors or arrays; other keys are untouched).
        channels: indices of the channels to blank.
        prob: probability per call.
    """

    def __init__(self, keys: Hashable | Sequence[Hashable], channels: Sequence[int], prob: float) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob)
        self.channels = list(channels)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """``data`` with the channels blanked in this call's draw (a copy; the input is not changed)."""
        out = dict(data)
        self.randomize(None)
        if not self._do_transform or not self.channels:
            return out
        for key in self.key_iterator(out):
            image = out[key].clone() if hasattr(out[key], "clone") else out[key].copy()
            image[self.channels] = 0
            out[key] = image
        return out


def build_augmentation(rotate_deg: float = 15.0, flip_prob: float = 0.5, intensity_scale: float = 0.2,
                       acquisition_prob: float = 0.0, blank_channels: Sequence[int] = (),
                       subtraction_only_prob: float = 0.0, zoom_out_prob: float = 0.0) -> Compose:
    """The training augmentation as a MONAI ``Compose`` (applied after the patch crop).

    Args:
        rotate_deg: uniform random rotation in [-rotate_deg, +rotate_deg] degrees in the axial plane.
        flip_prob: probability of a left-right flip.
        intensity_scale: image multiplied by ``1 + U(-s, s)`` (all channels together).
        acquisition_prob: probability of each acquisition augmentation (:func:`acquisition_transforms`);
            0 leaves them out.
        blank_channels: indices of the non-subtraction channels (``pre``, ``postK``) for the subtraction-only
            patches.
        subtraction_only_prob: probability that a patch has ``blank_channels`` set to 0 (after every other
            augmentation); 0 leaves it out.
        zoom_out_prob: probability that a patch's image and label are shrunk by a factor in
            :data:`ZOOM_OUT_RANGE` (trilinear / nearest, edges repeated); 0 leaves it out.

    Returns:
        A ``Compose`` whose randomness is seeded with ``set_random_state``.
    """
    transforms = []
    if rotate_deg > 0:
        r = math.radians(rotate_deg)
        transforms.append(RandRotated(keys=("image", "label"), range_x=(-r, r), prob=1.0, keep_size=True,
                                      mode=("bilinear", "nearest"), padding_mode="zeros"))
    if zoom_out_prob > 0:
        transforms.append(RandZoomd(keys=("image", "label"), prob=zoom_out_prob, min_zoom=ZOOM_OUT_RANGE[0],
                                    max_zoom=ZOOM_OUT_RANGE[1], mode=("trilinear", "nearest"), padding_mode="edge",
                                    keep_size=True))
    if flip_prob > 0:
        transforms.append(RandFlipd(keys=("image", "label"), spatial_axis=2, prob=flip_prob))
    if intensity_scale > 0:
        transforms.append(RandScaleIntensityd(keys="image", factors=intensity_scale, prob=1.0))
    if acquisition_prob > 0:
        transforms.extend(acquisition_transforms(acquisition_prob))
    if subtraction_only_prob > 0 and blank_channels:
        transforms.append(RandBlankChannelsd(keys="image", channels=blank_channels, prob=subtraction_only_prob))
    transforms.append(EnsureTyped(keys=("image", "label"), track_meta=False))
    return Compose(transforms)
