"""Derived DCE maps: subtraction, percent enhancement, signal enhancement ratio.

All maps are float32 arrays of shape ``(z, y, x)`` on the exam's (pre-contrast) grid. Notation:
``S0`` = pre-contrast signal, ``Sk`` = k-th post-contrast signal (``k = 1`` is the first post phase).

- subtraction: ``Sk - S0`` in the scanner's intensity units (arbitrary units, a.u.).
- percent enhancement (PE): ``100 * (Sk - S0) / S0`` in percent; 0 where ``S0 < min_pre`` (air, background),
  where the ratio is meaningless noise.
- signal enhancement ratio (SER): ``(S1 - S0) / (S_late - S0)``, dimensionless; > 1 means washout, ~1 plateau,
  < 1 persistent enhancement. 0 where the early enhancement ``S1 - S0`` is below ``min_enhancement``
  (not enhancing); the denominator is floored at ``min_enhancement`` and the ratio clipped to ``[0, max_ser]``.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .dce_exam import DCEExam

#: default upper clip of the signal enhancement ratio
MAX_SER = 10.0


def _post_index(exam: DCEExam, k: int, arg: str = "k") -> int:
    """Phase index of post-contrast phase ``k`` (1 = first post; negative counts from the last)."""
    n_post = len(exam.phases) - 1
    if k == 0 or not -n_post <= k <= n_post:
        raise InputError(
            f"{arg} must be a post-contrast phase number 1..{n_post} (or -1..-{n_post} from the last), got {k}"
        )
    return k if k > 0 else n_post + 1 + k


def robust_max(array: np.ndarray, percentile: float = 99.0, step: int = 4) -> float:
    """``percentile`` of ``array`` on a ``step``-subsampled copy (fast robust intensity scale)."""
    sub = np.asarray(array[::step, ::step, ::step], dtype=np.float32)
    return float(np.percentile(sub, percentile)) if sub.size else 0.0


def default_min_pre(exam: DCEExam, fraction: float = 0.02) -> float:
    """Default pre-contrast floor for PE: ``fraction`` of the 99th percentile of the pre phase (intensity units)."""
    return max(fraction * robust_max(exam.pre.array), 1e-6)


def subtraction(exam: DCEExam, k: int = 1) -> np.ndarray:
    """Subtraction image ``S_k - S_0``.

    Args:
        exam: the exam.
        k: post-contrast phase number (1 = first post; -1 = last).

    Returns:
        float32 ``(z, y, x)`` in the scanner's intensity units (a.u.).
    """
    i = _post_index(exam, k)
    return np.subtract(exam.phases[i].array, exam.pre.array, dtype=np.float32)


def percent_enhancement(exam: DCEExam, k: int = 1, min_pre: float | None = None) -> np.ndarray:
    """Percent enhancement ``100 * (S_k - S_0) / S_0``.

    Args:
        exam: the exam.
        k: post-contrast phase number (1 = first post; -1 = last).
        min_pre: voxels with ``S_0 < min_pre`` (intensity units) get 0; default :func:`default_min_pre`
            (2 % of the pre phase's 99th percentile).

    Returns:
        float32 ``(z, y, x)`` in percent.
    """
    i = _post_index(exam, k)
    if min_pre is None:
        min_pre = default_min_pre(exam)
    if not np.isfinite(min_pre) or min_pre <= 0:
        raise InputError(f"min_pre must be a positive intensity, got {min_pre}")
    s0 = np.asarray(exam.pre.array, dtype=np.float32)
    sk = np.asarray(exam.phases[i].array, dtype=np.float32)
    valid = s0 >= min_pre
    out = np.zeros(s0.shape, dtype=np.float32)
    np.divide(sk - s0, s0, out=out, where=valid)
    out *= 100.0
    return out


def signal_enhancement_ratio(
    exam: DCEExam,
    early: int = 1,
    late: int = -1,
    min_enhancement: float | None = None,
    max_ser: float = MAX_SER,
) -> np.ndarray:
    """Signal enhancement ratio ``(S_early - S_0) / (S_late - S_0)``.

    Args:
        exam: the exam (at least two post-contrast phases for a meaningful SER; with one post phase
            ``early == late`` and SER is 1 wherever enhancing).
        early: early post-contrast phase number (default 1).
        late: late post-contrast phase number (default -1 = last).
        min_enhancement: smallest early enhancement ``S_early - S_0`` (intensity units) where SER is computed
            (0 elsewhere); also the floor of the denominator. Default: 2 % of the pre phase's 99th percentile.
        max_ser: upper clip of the ratio.

    Returns:
        float32 ``(z, y, x)``, dimensionless, in ``[0, max_ser]``.
    """
    ie = _post_index(exam, early, "early")
    il = _post_index(exam, late, "late")
    if min_enhancement is None:
        min_enhancement = default_min_pre(exam)
    if not np.isfinite(min_enhancement) or min_enhancement <= 0:
        raise InputError(f"min_enhancement must be a positive intensity, got {min_enhancement}")
    if not max_ser > 0:
        raise InputError(f"max_ser must be positive, got {max_ser}")
    s0 = np.asarray(exam.pre.array, dtype=np.float32)
    early_enh = np.asarray(exam.phases[ie].array, dtype=np.float32) - s0
    late_enh = np.asarray(exam.phases[il].array, dtype=np.float32) - s0
    np.maximum(late_enh, np.float32(min_enhancement), out=late_enh)
    out = np.zeros(s0.shape, dtype=np.float32)
    np.divide(early_enh, late_enh, out=out, where=early_enh >= min_enhancement)
    np.clip(out, 0.0, max_ser, out=out)
    return out
