"""Training datasets of corrected cases and model training (see docs/training.md).

Public API::

    from breastlesionseg.training import (Dataset, CaseRecord, add_case, check_dataset,
                                          TrainConfig, train, TrainResult, split_cases)

``add_case(dataset, case_id, phases, lesions=..., breast_mask=..., seg_nrrd=..., force=False) -> CaseRecord``;
``check_dataset(dataset) -> DatasetCheckReport``; ``train(TrainConfig(...)) -> TrainResult``.
The dataset functions do not import torch; ``train`` and ``TrainConfig`` are imported on first use.
"""
from __future__ import annotations

from ..lazy_exports import lazy_exports
from .crossval import split_cases
from .dataset import CaseRecord, Dataset, Manifest
from .dataset_add import add_case
from .dataset_check import DatasetCheckReport, check_dataset

_LAZY = {"TrainConfig": "config", "train": "loop", "TrainResult": "loop"}

__all__ = ["CaseRecord", "Dataset", "DatasetCheckReport", "Manifest", "TrainConfig", "TrainResult", "add_case",
           "check_dataset", "split_cases", "train"]

__getattr__ = lazy_exports(__name__, _LAZY)[0]
