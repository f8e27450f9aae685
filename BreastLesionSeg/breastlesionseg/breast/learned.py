"""Learned breast-region segmentation: a network of :mod:`breastlesionseg.nn` with its own model card.

A breast-region model is an ordinary model folder (``model_card.json`` + ``weights.pt``, saved with
:func:`breastlesionseg.nn.save_model`) whose card carries ``"task": "breast_region"`` (an extra card
field) and one of two output layouts, named by ``label_names``:

- ``["breast"]``: one logit channel; ``sigmoid > threshold`` is breast, split left/right at the
  sternal midline (:func:`breastlesionseg.breast.sides.split_sides`);
- ``["background", "breast_left", "breast_right"]``: three logit channels, argmax gives 0/1/2.

Its input is normalised over the whole volume (``normalization_region: "volume"``), since no breast
mask exists yet. The exam is resampled to the card's spacing, segmented with MONAI's Gaussian
sliding window, and the probabilities are resampled back onto the pre-contrast grid (linear) before
thresholding, so the mask lies exactly on the pre grid.
"""
from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch

from ..errors import ModelError
from ..exam.resample import resample_to_grid
from ..geometry import Geometry, Volume
from .config import BreastRegionConfig
from .sides import split_sides

log = logging.getLogger(__name__)

#: value of the card's extra field ``task`` for breast-region models
BREAST_REGION_TASK = "breast_region"
LABELS_BINARY = ["breast"]
LABELS_SIDES = ["background", "breast_left", "breast_right"]


def _model_grid(geometry: Geometry, spacing_xyz: tuple[float, float, float]) -> Geometry:
    """Same origin and direction, the card's spacing, covering the same physical extent."""
    size = tuple(
        max(1, int(math.ceil(n * s / t - 1e-6))) for n, s, t in zip(geometry.size, geometry.spacing, spacing_xyz)
    )
    # keep the field of view centred: shift the origin by half the difference of extents
    shift = np.array([((n - 1) * s - (m - 1) * t) / 2.0
                      for n, s, m, t in zip(geometry.size, geometry.spacing, size, spacing_xyz)])
    origin = np.asarray(geometry.origin) + geometry.direction_matrix @ shift
    return Geometry(size, tuple(float(t) for t in spacing_xyz), tuple(float(v) for v in origin), geometry.direction)


def load_breast_model(name_or_path: str, device: str = "cpu"):
    """Load a breast-region model folder and check that its card describes one.

    Returns:
        ``(module in eval mode, card)``.

    Raises:
        ModelError: not found, corrupt, or not a breast-region model (task / labels / normalisation).
    """
    from ..nn import load_model

    module, card = load_model(name_or_path, device=device)
    task = card.extra.get("task")
    if task != BREAST_REGION_TASK:
        raise ModelError(
            f"model '{card.model_id}' is not a breast-region model: its card has task={task!r}, expected "
            f"'{BREAST_REGION_TASK}' (lesion models cannot segment the breast region)"
        )
    if card.label_names not in (LABELS_BINARY, LABELS_SIDES):
        raise ModelError(
            f"breast-region model '{card.model_id}': label_names must be {LABELS_BINARY} or {LABELS_SIDES}, "
            f"got {card.label_names}"
        )
    if card.normalization_region != "volume":
        raise ModelError(
            f"breast-region model '{card.model_id}': normalization_region must be 'volume' (there is no breast "
            f"mask before the breast region is segmented), got {card.normalization_region!r}"
        )
    return module, card


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def segment_learned(phases: list[Volume], config: BreastRegionConfig) -> tuple[np.ndarray, dict]:
    """Segment the breast region with a learned model.

    Args:
        phases: ``[pre, post1, ...]`` on one grid.
        config: ``method="model"``, ``model`` (id or folder) and ``device``.

    Returns:
        ``(mask uint8 (z, y, x) on the pre grid, info)``; ``info`` holds ``model_id``,
        ``weights_sha256``, ``device`` and ``timings_s``.
    """
    from monai.inferers import sliding_window_inference

    from ..nn import build_channels

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    device = _resolve_device(config.device)
    module, card = load_breast_model(str(config.model), device=device)
    timings["load_model_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    geom = phases[0].geometry
    channels = build_channels(phases, card.input_channels, card.normalization, mask=None)  # (C, z, y, x)
    target = _model_grid(geom, card.target_spacing_mm)
    resampled = np.stack([
        resample_to_grid(Volume(c, geom, name=n), target, "linear", 0.0).array.astype(np.float32)
        for c, n in zip(channels, card.input_channels)
    ])
    timings["preprocess_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    x = torch.from_numpy(resampled[None]).to(device)
    roi = tuple(min(int(p), int(s)) for p, s in zip(card.patch_size, resampled.shape[1:]))
    with torch.inference_mode():
        logits = sliding_window_inference(x, roi_size=roi, sw_batch_size=1, predictor=module,
                                          overlap=float(card.overlap), mode="gaussian")
        if card.label_names == LABELS_BINARY:
            prob = torch.sigmoid(logits)[0]
        else:
            prob = torch.softmax(logits, dim=1)[0]
    prob_np = prob.float().cpu().numpy()
    timings["inference_s"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    back = np.stack([resample_to_grid(Volume(p, target, name="prob"), geom, "linear", 0.0).array for p in prob_np])
    info: dict = {}
    if card.label_names == LABELS_BINARY:
        region = back[0] > float(card.threshold)
        mask, side_info = split_sides(region, geom)
        info.update(side_info)
    else:
        mask = np.argmax(back, axis=0).astype(np.uint8)  # channel index == label value (0, 1 left, 2 right)
    timings["postprocess_s"] = time.perf_counter() - t3
    info.update({
        "model_id": card.model_id,
        "weights_sha256": card.weights_sha256,
        "device": device,
        "model_spacing_mm": list(card.target_spacing_mm),
        "timings_s": timings,
    })
    return mask.astype(np.uint8), info
