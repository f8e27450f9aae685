"""Training losses: Wang et al. 2025 (Dice + ACT cross-entropy) and Narimani et al. (hybrid Dice/Focal/CE), from MONAI/torch.

The networks output one lesion channel of logits ``(N, 1, D, H, W)`` (probability = sigmoid), so
the "cross-entropy" of the segmentation is the binary cross-entropy on logits; the ACT head outputs
``(N, 2)`` logits ("no lesion", "lesion in the patch") trained with softmax cross-entropy.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from monai.losses import DiceLoss, FocalLoss
from torch import nn

from ..errors import InputError


@dataclass
class LossParts:
    """The total loss and its (detached) parts, for logging."""

    total: torch.Tensor
    parts: dict[str, float]


class SegmentationLoss(nn.Module):
    """Segmentation loss + optional ACT cross-entropy.

    Args:
        kind: ``"dice_ce"`` = Dice (segmentation) + CE (ACT head), Wang et al. 2025; ``"hybrid"`` =
            ``w_dice * Dice + w_focal * Focal + w_ce * BCE`` (segmentation) + CE (ACT head), Narimani et al..
        hybrid_weights: (dice, focal, ce) weights of the hybrid loss (Narimani et al.: 0.1, 0.45, 0.45).
        focal_gamma: focal loss focusing parameter.
        act_weight: weight of the ACT cross-entropy (0 disables it).

    The Dice is computed over the whole batch (``batch=True``) so that patches without a lesion
    (negative samples of the lesion-balanced sampler) contribute false positives instead of an
    ill-defined per-patch Dice.
    """

    def __init__(self, kind: str = "dice_ce", hybrid_weights: tuple[float, float, float] = (0.1, 0.45, 0.45),
                 focal_gamma: float = 2.0, act_weight: float = 0.1) -> None:
        super().__init__()
        if kind not in ("dice_ce", "hybrid"):
            raise InputError(f"unknown loss {kind!r}; expected 'dice_ce' or 'hybrid'")
        if len(hybrid_weights) != 3 or any(w < 0 for w in hybrid_weights):
            raise InputError(f"hybrid_weights must be 3 non-negative weights (dice, focal, ce), got {hybrid_weights}")
        self.kind = kind
        self.weights = tuple(float(w) for w in hybrid_weights)
        self.act_weight = float(act_weight)
        self.dice = DiceLoss(sigmoid=True, batch=True, smooth_nr=1e-5, smooth_dr=1e-5)
        self.focal = FocalLoss(gamma=focal_gamma, use_softmax=False)
        self.bce = nn.BCEWithLogitsLoss()
        self.ce = nn.CrossEntropyLoss()

    def forward(self, seg_logits: torch.Tensor, target: torch.Tensor, act_logits: torch.Tensor | None = None,
                act_target: torch.Tensor | None = None) -> LossParts:
        """Compute the loss.

        Args:
            seg_logits: ``(N, 1, D, H, W)`` logits.
            target: ``(N, 1, D, H, W)`` binary lesion mask (float).
            act_logits: ``(N, 2)`` ACT logits or None.
            act_target: ``(N,)`` long, 1 = lesion in the patch.

        Returns:
            :class:`LossParts` with the scalar total and the float value of each part.
        """
        seg_logits = seg_logits.float()
        target = target.float()
        parts: dict[str, torch.Tensor] = {}
        if self.kind == "dice_ce":
            parts["dice"] = self.dice(seg_logits, target)
            total = parts["dice"]
        else:
            w_dice, w_focal, w_ce = self.weights
            parts["dice"] = self.dice(seg_logits, target)
            parts["focal"] = self.focal(seg_logits, target)
            parts["bce"] = self.bce(seg_logits, target)
            total = w_dice * parts["dice"] + w_focal * parts["focal"] + w_ce * parts["bce"]
        if act_logits is not None and act_target is not None and self.act_weight > 0:
            parts["act_ce"] = self.ce(act_logits.float(), act_target.long())
            total = total + self.act_weight * parts["act_ce"]
        return LossParts(total, {k: float(v.detach()) for k, v in parts.items()})
