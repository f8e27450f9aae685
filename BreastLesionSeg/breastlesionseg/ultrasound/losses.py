"""Multi-task loss: segmentation (Dice + BCE, or either, as compared in the BUSI attention U-Net paper)
plus BCE of the lesion-present logit (all samples) and of the malignancy logit (lesion samples of known
pathology only: images with unknown pathology still train segmentation and lesion-present)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nn.multitask_output import MultiTaskOutput


class UltrasoundLoss(torch.nn.Module):
    """``seg + w_lesion * BCE(lesion) + w_malignancy * BCE(malignancy | lesion, pathology known)``.

    The Dice term is MONAI's ``DiceLoss`` per image with smoothing 1, so that an empty mask (negative crop)
    asks for an empty prediction without dividing by zero.
    """

    def __init__(self, seg_loss: str = "dice+bce", lesion_weight: float = 0.5, malignancy_weight: float = 0.5) -> None:
        super().__init__()
        from monai.losses import DiceLoss

        self.use_dice, self.use_bce = "dice" in seg_loss, "bce" in seg_loss
        self.dice = DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)
        self.lesion_weight, self.malignancy_weight = lesion_weight, malignancy_weight

    def forward(self, output: MultiTaskOutput, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scalar loss of a batch (output logits cast to float32).

        The malignancy BCE is the mean over the batch's lesion samples whose ``malignant_known`` is 1 (a batch
        without that key: all lesion samples); a batch without any adds no malignancy term.
        """
        seg_logits = output.seg_logits.float()
        loss = seg_logits.new_zeros(())
        if self.use_dice:
            loss = loss + self.dice(seg_logits, batch["mask"])
        if self.use_bce:
            loss = loss + F.binary_cross_entropy_with_logits(seg_logits, batch["mask"])
        loss = loss + self.lesion_weight * F.binary_cross_entropy_with_logits(output.lesion_logit.float(), batch["lesion"])
        has_label = batch["lesion"] > 0.5
        if "malignant_known" in batch:
            has_label = has_label & (batch["malignant_known"] > 0.5)
        if has_label.any():
            loss = loss + self.malignancy_weight * F.binary_cross_entropy_with_logits(
                output.malignancy_logit.float()[has_label], batch["malignant"][has_label])
        return loss
