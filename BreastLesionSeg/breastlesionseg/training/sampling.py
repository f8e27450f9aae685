"""Lesion-balanced patch sampling from the cached cases (MONAI ``RandCropByPosNegLabeld``).

Each item is one random patch of one case: with probability ``pos_fraction`` it is centred on a
lesion voxel, otherwise on a lesion-free voxel of the breast region (the hard negatives: glandular
tissue with background enhancement). With ``positive_sampling="instance"`` (default) the lesion voxel
is drawn so that every lesion of a case (connected component of the label) is equally likely, whatever
its size; with ``"voxel"`` every lesion voxel is equally likely, so a 2 mL mass gets ~100x the patches
of a 20 mm3 focus and small lesions are rarely seen. The patch is then augmented (:mod:`.transforms`). The ACT
label is 1 when the (augmented) patch contains a lesion voxel.

Randomness is reseeded per epoch and rank with :meth:`PatchDataset.set_epoch`, so a resumed run
draws the same patches as an uninterrupted one and DDP ranks draw different ones.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import SimpleITK as sitk
import torch
from monai.transforms import Compose, RandCropByPosNegLabeld
from torch.utils.data import Dataset

from ..errors import InputError
from .config import POSITIVE_SAMPLING_MODES
from .preprocess import PreparedCase

log = logging.getLogger(__name__)


def _pad_to(arr: np.ndarray, shape_zyx: Sequence[int], value: float) -> np.ndarray:
    """Pad ``(..., z, y, x)`` symmetrically with ``value`` to at least ``shape_zyx``."""
    pads = [(0, 0)] * (arr.ndim - 3)
    for n, p in zip(arr.shape[-3:], shape_zyx):
        extra = max(0, int(p) - n)
        pads.append((extra // 2, extra - extra // 2))
    return np.pad(arr, pads, mode="constant", constant_values=value) if any(sum(p) for p in pads) else arr


def _as_float32(image: Any) -> Any:
    """A patch of a float16 training cache as float32 (a float32 patch is returned as it is)."""
    if isinstance(image, torch.Tensor):
        return image if image.dtype == torch.float32 else image.to(torch.float32)
    image = np.asarray(image)
    return image if image.dtype == np.float32 else image.astype(np.float32)


INDICES_PER_LESION = 512
"""Lesion-centre candidates kept per lesion instance in ``"instance"`` mode (drawn with replacement)."""


def lesion_balanced_indices(label_zyx: np.ndarray, rng: np.random.Generator,
                            per_lesion: int = INDICES_PER_LESION) -> np.ndarray:
    """Flat lesion-voxel indices in which every lesion instance is equally represented.

    Args:
        label_zyx: ``(z, y, x)`` binary lesion mask.
        rng: random generator (the draw is reproducible from it).
        per_lesion: indices drawn (with replacement) from each connected lesion (26-connectivity).

    Returns:
        ``int64`` flat indices into ``label_zyx``, ``per_lesion`` per lesion (empty without lesions).
    """
    mask = np.ascontiguousarray(label_zyx > 0, dtype=np.uint8)
    if not mask.any():
        return np.zeros(0, dtype=np.int64)
    components = sitk.GetArrayFromImage(
        sitk.ConnectedComponent(sitk.GetImageFromArray(mask), True)).ravel()
    fg = np.flatnonzero(components)
    labels = components[fg]
    order = np.argsort(labels, kind="stable")
    fg, labels = fg[order], labels[order]
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], labels.size]
    picks = [fg[a + rng.integers(0, b - a, size=int(per_lesion))] for a, b in zip(starts, ends)]
    return np.concatenate(picks).astype(np.int64)


class PatchDataset(Dataset):
    """``len = n_cases * patches_per_case`` random patches per epoch.

    Args:
        cases: the preprocessed training cases.
        patch_size: (D, H, W) voxels.
        patches_per_case: items per case per epoch.
        pos_fraction: share of lesion-centred patches.
        augmentation: MONAI transform applied to ``{"image", "label"}`` after the crop (or None).
        seed: base random seed.
        positive_sampling: ``"instance"`` (every lesion equally likely) or ``"voxel"`` (every lesion
            voxel equally likely).

    Items are ``(image (C, D, H, W) float32, label (1, D, H, W) float32, act_label () int64)``.
    """

    def __init__(self, cases: Sequence[PreparedCase], patch_size: Sequence[int], patches_per_case: int,
                 pos_fraction: float, augmentation: Compose | None, seed: int = 0,
                 positive_sampling: str = "instance") -> None:
        if not cases:
            raise InputError("no training case: the training split is empty")
        if positive_sampling not in POSITIVE_SAMPLING_MODES:
            raise InputError(f"positive_sampling must be one of {POSITIVE_SAMPLING_MODES}, "
                             f"got {positive_sampling!r}")
        self.positive_sampling = positive_sampling
        index_rng = np.random.default_rng(int(seed))
        self.patch_size = tuple(int(p) for p in patch_size)
        self.patches_per_case = int(patches_per_case)
        self.augmentation = augmentation
        self.seed = int(seed)
        self._items: list[dict] = []
        for case in cases:
            image = _pad_to(case.image, self.patch_size, 0.0)
            label = _pad_to(case.label, self.patch_size, 0)
            breast = _pad_to(case.breast, self.patch_size, 0)
            if positive_sampling == "instance":
                fg = lesion_balanced_indices(label[0], index_rng)
            else:
                fg = np.flatnonzero(label[0] > 0)
            bg = np.flatnonzero((breast > 0) & (label[0] == 0))
            if bg.size == 0:
                bg = np.flatnonzero(label[0] == 0)
            self._items.append({"image": image, "label": label, "fg": fg, "bg": bg, "case_id": case.case_id})
        pos = float(pos_fraction)
        self.crop = RandCropByPosNegLabeld(
            keys=("image", "label"), label_key="label", spatial_size=self.patch_size,
            pos=pos if pos > 0 else 0.0, neg=(1.0 - pos) if pos < 1 else 0.0, num_samples=1,
            fg_indices_key="fg", bg_indices_key="bg", allow_smaller=False,
        )
        self.set_epoch(0)

    def set_epoch(self, epoch: int, rank: int = 0) -> None:
        """Reseed the crop and augmentation for ``epoch`` on process ``rank``."""
        base = (self.seed * 1_000_003 + int(epoch) * 7919 + int(rank) * 104_729) % (2**31 - 1)
        self.crop.set_random_state(seed=base)
        if self.augmentation is not None:
            self.augmentation.set_random_state(seed=(base + 1) % (2**31 - 1))

    def __len__(self) -> int:
        return len(self._items) * self.patches_per_case

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        item = self._items[index % len(self._items)]
        with_fg = {"image": item["image"], "label": item["label"], "fg": item["fg"], "bg": item["bg"]}
        if item["fg"].size == 0:  # lesion-free case: only negatives
            with_fg["fg"] = item["bg"]
        patch = self.crop(with_fg)[0]
        patch = {"image": _as_float32(patch["image"]), "label": patch["label"]}
        if self.augmentation is not None:
            patch = self.augmentation(patch)
        image = torch.as_tensor(np.asarray(patch["image"]), dtype=torch.float32)
        label = (torch.as_tensor(np.asarray(patch["label"])) > 0.5).float()
        act = torch.tensor(int(label.any()), dtype=torch.long)
        return image, label, act
