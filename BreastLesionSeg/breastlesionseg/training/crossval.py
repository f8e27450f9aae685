"""Case-level train/validation splits: k-fold cross-validation (Narimani et al. uses 5 folds) or a hold-out split."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import InputError


def kfold_indices(n_cases: int, folds: int, seed: int = 0) -> list[list[int]]:
    """Partition ``range(n_cases)`` into ``folds`` near-equal folds after a seeded shuffle.

    Raises:
        InputError: ``folds`` < 2 or more folds than cases.
    """
    if folds < 2:
        raise InputError(f"k-fold cross-validation needs folds >= 2, got {folds}")
    if n_cases < folds:
        raise InputError(f"{folds}-fold cross-validation needs at least {folds} cases, the dataset has {n_cases}")
    order = np.random.default_rng(seed).permutation(n_cases)
    return [sorted(int(i) for i in part) for part in np.array_split(order, folds)]


def split_cases(case_ids: Sequence[str], folds: int = 1, fold: int = 0, val_fraction: float = 0.2,
                seed: int = 0) -> tuple[list[str], list[str]]:
    """Split case ids into (train, validation).

    Args:
        case_ids: all case ids (order does not matter: they are sorted first, so the split depends
            only on the set of ids and the seed).
        folds: k >= 2 for k-fold CV (fold ``fold`` is validation), 1 for a hold-out split.
        fold: the validation fold, 0-based.
        val_fraction: hold-out share when ``folds == 1`` (rounded, at least 1 case when there are
            >= 2 cases and the fraction is > 0; 0 = no validation).
        seed: shuffle seed.

    Returns:
        ``(train_ids, val_ids)``, each sorted.
    """
    ids = sorted(case_ids)
    if len(set(ids)) != len(ids):
        raise InputError("duplicate case ids in the split")
    if not 0 <= fold < max(folds, 1):
        raise InputError(f"fold must be in 0..{folds - 1}, got {fold}")
    if folds >= 2:
        parts = kfold_indices(len(ids), folds, seed)
        val_idx = set(parts[fold])
    else:
        if val_fraction <= 0 or len(ids) < 2:
            return ids, []
        n_val = min(len(ids) - 1, max(1, int(math.floor(val_fraction * len(ids) + 0.5))))
        val_idx = set(int(i) for i in np.random.default_rng(seed).permutation(len(ids))[:n_val])
    train = [c for i, c in enumerate(ids) if i not in val_idx]
    val = [c for i, c in enumerate(ids) if i in val_idx]
    return train, val
