"""Validation: full-crop sliding-window inference (MONAI) on preprocessed cases, Dice / IoU per case.

Each validation case is the whole optimized-volume crop on the model grid (not patches), predicted
with ``monai.inferers.sliding_window_inference`` with the training patch size, thresholded, and
(like inference) restricted to the breast region. Dice and IoU come from ``monai.metrics``; a case
without lesion scores 1 when nothing is predicted and 0 otherwise.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.metrics import compute_dice, compute_iou
from torch import nn

from .preprocess import PreparedCase

log = logging.getLogger(__name__)


@dataclass
class ValidationResult:
    """Per-case and mean validation scores.

    Attributes:
        per_case: ``[{"case_id", "dice", "iou", "loss", "lesion_voxels", "predicted_voxels"}]``.
        dice: mean Dice over cases (None without cases).
        iou: mean IoU over cases.
        loss: mean segmentation loss over cases (None when no loss function was given).
        pooled_dice: Dice of all voxels of all cases together.
    """

    per_case: list[dict[str, Any]] = field(default_factory=list)

    def _mean(self, key: str) -> float | None:
        vals = [c[key] for c in self.per_case if c.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    @property
    def dice(self) -> float | None:  # noqa: D102
        return self._mean("dice")

    @property
    def iou(self) -> float | None:  # noqa: D102
        return self._mean("iou")

    @property
    def loss(self) -> float | None:  # noqa: D102
        return self._mean("loss")

    @property
    def pooled_dice(self) -> float | None:  # noqa: D102
        if not self.per_case:
            return None
        tp = sum(c["tp"] for c in self.per_case)
        denom = sum(c["lesion_voxels"] + c["predicted_voxels"] for c in self.per_case)
        return 1.0 if denom == 0 else 2.0 * tp / denom

    def summary(self) -> dict[str, Any]:
        """JSON-ready means + per case."""
        with_lesion = [c["dice"] for c in self.per_case if c["lesion_voxels"] > 0]
        return {"dice": self.dice, "iou": self.iou, "loss": self.loss, "pooled_dice": self.pooled_dice,
                "dice_cases_with_lesion": float(np.mean(with_lesion)) if with_lesion else None,
                "n_cases": len(self.per_case), "per_case": self.per_case}


#: logit given to windows without any breast voxel when they are skipped (sigmoid ~ 2e-9)
SKIPPED_WINDOW_LOGIT = -20.0


class _MaskedPredictor:
    """Sliding-window predictor whose last input channel is the breast mask: windows without a
    breast voxel are not run (their logits are :data:`SKIPPED_WINDOW_LOGIT`), the others get the
    network's segmentation logits. Counts run/skipped windows."""

    def __init__(self, network: nn.Module) -> None:
        self.network = network
        self.run = 0
        self.skipped = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        image, mask = x[:, :-1], x[:, -1]
        keep = mask.flatten(1).amax(1) > 0
        out = torch.full((x.shape[0], 1, *x.shape[2:]), SKIPPED_WINDOW_LOGIT, dtype=x.dtype, device=x.device)
        n = int(keep.sum())
        self.run += n
        self.skipped += x.shape[0] - n
        if n:
            out[keep] = self.network(image[keep]).to(out.dtype)
        return out


def predict_logits(network: nn.Module, image: np.ndarray, patch_size: Sequence[int], overlap: float,
                   device: torch.device, amp: bool = False, sw_batch_size: int = 8,
                   breast: np.ndarray | None = None) -> torch.Tensor:
    """Sliding-window segmentation logits of one case (MONAI ``sliding_window_inference``, Gaussian blending).

    Args:
        network: ``forward(x) -> (N, 1, D, H, W)`` logits.
        image: ``(C, z, y, x)`` float32 input.
        patch_size: window (D, H, W).
        overlap: window overlap fraction.
        device: where to run.
        amp: autocast (CUDA only).
        sw_batch_size: windows per forward pass.
        breast: optional ``(z, y, x)`` breast mask; windows without a breast voxel are skipped
            (their logits are :data:`SKIPPED_WINDOW_LOGIT`), which only changes voxels outside the breast.

    Returns:
        ``(1, 1, z, y, x)`` float32 logits on the CPU.
    """
    x = torch.as_tensor(image, dtype=torch.float32)[None]
    predictor: Callable = network
    if breast is not None:
        x = torch.cat([x, torch.as_tensor(breast > 0, dtype=torch.float32)[None, None]], dim=1)
        predictor = _MaskedPredictor(network)
    x = x.to(device)
    use_amp = amp and device.type == "cuda"
    with torch.no_grad(), torch.autocast(device_type=device.type, enabled=use_amp):
        out = sliding_window_inference(x, roi_size=tuple(patch_size), sw_batch_size=sw_batch_size,
                                       predictor=predictor, overlap=overlap, mode="gaussian")
    if isinstance(predictor, _MaskedPredictor):
        log.debug("sliding window: %d windows run, %d skipped (no breast voxel)", predictor.run, predictor.skipped)
    return torch.as_tensor(out).float().cpu()


def validate_cases(
    network: nn.Module,
    cases: Iterable[PreparedCase],
    patch_size: Sequence[int],
    overlap: float = 0.25,
    threshold: float = 0.5,
    device: torch.device | str = "cpu",
    amp: bool = False,
    mask_to_breast: bool = True,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> ValidationResult:
    """Predict each case on its full crop and score it.

    Args:
        network: the segmentation network (``forward`` gives logits); put in eval mode here and
            restored to its previous mode afterwards.
        cases: preprocessed cases.
        patch_size: sliding window (D, H, W).
        overlap: sliding-window overlap.
        threshold: probability threshold.
        device: device to run on.
        amp: CUDA autocast.
        mask_to_breast: zero predictions outside the breast mask (as inference does) and skip
            sliding windows without a breast voxel.
        loss_fn: optional ``loss_fn(logits, target) -> scalar`` for the validation loss.

    Returns:
        :class:`ValidationResult`.
    """
    device = torch.device(device)
    was_training = network.training
    network.eval()
    result = ValidationResult()
    try:
        for case in cases:
            logits = predict_logits(network, case.image, patch_size, overlap, device, amp,
                                    breast=case.breast if mask_to_breast else None)
            target = torch.as_tensor(case.label[None].astype(np.float32))
            loss = float(loss_fn(logits, target)) if loss_fn is not None else None
            pred = torch.sigmoid(logits) >= threshold
            if mask_to_breast:
                pred &= torch.as_tensor(case.breast > 0)[None, None]
            ref = target > 0.5
            dice = float(compute_dice(pred.float(), ref.float(), include_background=True, ignore_empty=False)[0, 0])
            iou = float(compute_iou(pred.float(), ref.float(), include_background=True, ignore_empty=False)[0, 0])
            result.per_case.append({
                "case_id": case.case_id, "dice": dice, "iou": iou, "loss": loss,
                "lesion_voxels": int(ref.sum()), "predicted_voxels": int(pred.sum()), "tp": int((pred & ref).sum()),
            })
    finally:
        network.train(was_training)
    return result
