"""The output of every 2D multi-task network: segmentation logits plus two image-level logits."""
from __future__ import annotations

from typing import NamedTuple

import torch


class MultiTaskOutput(NamedTuple):
    """One forward pass of a 2D lesion network.

    Attributes:
        seg_logits: (N, 1, H, W) lesion logits at the input size.
        lesion_logit: (N,) logit of "the image shows a lesion".
        malignancy_logit: (N,) logit of "the lesion is malignant" (meaningful when a lesion is present).
    """

    seg_logits: torch.Tensor
    lesion_logit: torch.Tensor
    malignancy_logit: torch.Tensor


class ImageLevelHeads(torch.nn.Module):
    """Lesion-present and malignancy logits from globally average- and max-pooled features.

    Shapes: ``(N, C, h, w) -> ((N,), (N,))``. Parameters: ``2 * (2 * C + 1)``.
    """

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = torch.nn.Dropout(dropout)
        self.lesion = torch.nn.Linear(2 * channels, 1)
        self.malignancy = torch.nn.Linear(2 * channels, 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(lesion_logit, malignancy_logit), each (N,)."""
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        pooled = self.dropout(pooled)
        return self.lesion(pooled).squeeze(1), self.malignancy(pooled).squeeze(1)
