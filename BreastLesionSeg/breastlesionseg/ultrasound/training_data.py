"""BUS-BRA images in memory and the samples of a training epoch / a validation set.

A sample is ``{"image": (1, S, S), "mask": (1, S, S), "lesion": 0|1, "malignant": 0|1, "malignant_known": 0|1}``
(``malignant_known`` is 0 for an image of unknown pathology and for every negative). Positives are
the annotated images (at random lesion-containing crops during training); negatives are lesion-free
crops of the same images (see :mod:`breastlesionseg.imaging2d.lesion_crops`; synthetic, not normal exams).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from ..errors import DatasetError
from ..imaging2d.image_io import read_image_2d, read_mask_2d
from ..imaging2d.intensity import scale_to_unit
from ..imaging2d.lesion_crops import Box, crop, lesion_bbox, lesion_free_regions, random_lesion_crop, random_subcrop
from ..imaging2d.letterbox import Letterbox
from .busbra import BusBraRecord

log = logging.getLogger(__name__)

#: shortest side of a lesion-free crop, px (BUS-BRA images are ~256 px)
NEGATIVE_MIN_SIDE_PX = 40


@dataclass
class LoadedImage:
    """One annotated image ready for sampling.

    Attributes:
        record: its BUS-BRA record.
        unit_pixels: (H, W) float32 intensities scaled to 0..1.
        mask: (H, W) bool lesion mask.
        bbox: lesion box.
        free_regions: lesion-free regions usable as negatives (largest first).
    """

    record: BusBraRecord
    unit_pixels: np.ndarray
    mask: np.ndarray
    bbox: Box
    free_regions: list[Box]


def load_images(records: list[BusBraRecord]) -> list[LoadedImage]:
    """Read, intensity-scale and index every record (raises DatasetError on an empty or mismatched mask)."""
    loaded = []
    for record in records:
        pixels = read_image_2d(record.image_path).pixels
        mask = read_mask_2d(record.mask_path)
        if mask.shape != pixels.shape:
            raise DatasetError(f"{record.mask_path}: mask {mask.shape} differs from image {pixels.shape}")
        bbox = lesion_bbox(mask)
        if bbox is None:
            raise DatasetError(f"{record.mask_path}: empty lesion mask")
        regions = lesion_free_regions(mask.shape, bbox, min_side_px=NEGATIVE_MIN_SIDE_PX)
        loaded.append(LoadedImage(record, scale_to_unit(pixels), mask, bbox, regions))
    return loaded


def letterboxed_pair(image: LoadedImage, box: Box, size_px: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop ``box`` of the image and its mask and letterbox both: ((1, S, S) image, (1, S, S) 0/1 mask)."""
    pixels, mask = crop(image.unit_pixels, box), crop(image.mask, box)
    letterbox = Letterbox.fit(pixels.shape[0], pixels.shape[1], size_px)
    return letterbox.apply(pixels), (letterbox.apply(mask.astype(np.float32)) > 0.5).float()


def positive_sample(image: LoadedImage, box: Box, size_px: int) -> dict:
    """A lesion sample of ``box`` (which contains the lesion)."""
    pixels, mask = letterboxed_pair(image, box, size_px)
    known = image.record.malignant is not None
    return {"image": pixels, "mask": mask, "lesion": 1.0, "malignant": float(bool(image.record.malignant)),
            "malignant_known": float(known)}


def negative_sample(image: LoadedImage, box: Box, size_px: int) -> dict:
    """A lesion-free sample of ``box`` (empty mask; malignancy label unused)."""
    pixels, _ = letterboxed_pair(image, box, size_px)
    return {"image": pixels, "mask": torch.zeros_like(pixels), "lesion": 0.0, "malignant": 0.0, "malignant_known": 0.0}


def epoch_samples(images: list[LoadedImage], size_px: int, negative_fraction: float,
                  rng: np.random.Generator) -> Iterator[dict]:
    """Shuffled samples of one training epoch: every image once (random lesion crop) plus negatives."""
    with_free = [i for i, image in enumerate(images) if image.free_regions]
    n_negative = round(len(images) * negative_fraction / (1.0 - negative_fraction)) if with_free else 0
    plan = [("pos", i) for i in range(len(images))] + [("neg", int(i)) for i in rng.choice(with_free, n_negative)]
    for kind, index in (plan[j] for j in rng.permutation(len(plan))):
        image = images[index]
        if kind == "pos":
            yield positive_sample(image, random_lesion_crop(image.mask.shape, image.bbox, rng), size_px)
        else:
            region = image.free_regions[int(rng.integers(len(image.free_regions)))]
            yield negative_sample(image, random_subcrop(region, rng, NEGATIVE_MIN_SIDE_PX), size_px)


def evaluation_samples(images: list[LoadedImage], size_px: int) -> tuple[list[dict], list[dict]]:
    """Deterministic (positives: full images, negatives: the largest lesion-free region of each image)."""
    positives = [positive_sample(image, (0, 0) + image.mask.shape, size_px) for image in images]
    negatives = [negative_sample(image, image.free_regions[0], size_px) for image in images if image.free_regions]
    return positives, negatives


def collate(samples: list[dict]) -> dict[str, torch.Tensor]:
    """Stack samples into a batch: image/mask (N, 1, S, S), lesion/malignant/malignant_known (N,).

    A sample without ``malignant_known`` counts as known when it is a lesion sample.
    """
    return {"image": torch.stack([s["image"] for s in samples]), "mask": torch.stack([s["mask"] for s in samples]),
            "lesion": torch.tensor([s["lesion"] for s in samples]), "malignant": torch.tensor([s["malignant"] for s in samples]),
            "malignant_known": torch.tensor([float(s.get("malignant_known", s["lesion"])) for s in samples])}
