"""Network input channels from a DCE exam: named channels, per-channel z-score normalisation.

Channel names (the model card's ``input_channels``):

* ``pre`` — the pre-contrast phase;
* ``postK`` — the K-th post-contrast phase (K = 1, 2, ...);
* ``subK`` — the subtraction ``postK - pre``.

Normalisations (each channel separately, statistics inside ``mask`` when given (the breast region), else over
the whole array):

* ``zscore`` (Wang et al. 2025 section 2.6; Narimani et al.): ``(v - mean) / std``;
* ``robust``: ``(v - median) / (1.4826 * MAD)``, MAD the median absolute deviation (1.4826 * MAD is the standard
  deviation of normally distributed values). The bright, heavy-tailed minority of voxels (vessels, fat edges left
  by motion in a subtraction without fat suppression) does not change the scale, so a lesion keeps its value;
  where more than half the voxels share one value (MAD ~0) the standard deviation is used instead;
* ``none``: the raw values (float32).

A constant channel (scale < 1e-6 of its largest value, e.g. an all-zero subtraction) is only centred, never
divided by ~0.
"""
from __future__ import annotations

import re
from typing import Sequence, Union

import numpy as np

from ..errors import InputError
from ..exam.dce_exam import DCEExam
from ..geometry import Volume

_NAME_RE = re.compile(r"^(pre|post([1-9][0-9]*)|sub([1-9][0-9]*))$")
#: the channel normalisations a model card may name (see the module docstring)
NORMALIZATIONS: tuple[str, ...] = ("zscore", "robust", "none")
#: 1.4826 * MAD estimates the standard deviation of normally distributed values
MAD_TO_SD = 1.4826

PhaseInput = Union[DCEExam, Sequence[Union[np.ndarray, Volume]]]


def parse_channel_name(name: str) -> tuple[str, int]:
    """``"pre" -> ("pre", 0)``, ``"post2" -> ("post", 2)``, ``"sub1" -> ("sub", 1)``.

    Raises:
        InputError: not one of the known channel names.
    """
    match = _NAME_RE.match(name) if isinstance(name, str) else None
    if not match:
        raise InputError(f"unknown input channel name {name!r}; expected 'pre', 'postK' or 'subK' (K = 1, 2, ...)")
    if name == "pre":
        return "pre", 0
    kind = "post" if match.group(2) else "sub"
    return kind, int(match.group(2) or match.group(3))


def required_phases(channel_names: Sequence[str]) -> int:
    """Number of phases (pre + posts) an exam needs for ``channel_names``."""
    return 1 + max((parse_channel_name(n)[1] for n in channel_names), default=0)


def _phase_arrays(exam_or_phases: PhaseInput) -> tuple[list[np.ndarray], list[str]]:
    if isinstance(exam_or_phases, DCEExam):
        vols = exam_or_phases.phases
        return [np.asarray(v.array) for v in vols], [v.name or f"phase {i}" for i, v in enumerate(vols)]
    if isinstance(exam_or_phases, np.ndarray) and exam_or_phases.ndim == 4:
        return list(exam_or_phases), [f"phase {i}" for i in range(exam_or_phases.shape[0])]
    if isinstance(exam_or_phases, (str, bytes)) or not isinstance(exam_or_phases, Sequence):
        raise InputError(
            f"build_channels needs a DCEExam or a list of (z, y, x) phase arrays; got {type(exam_or_phases).__name__}"
        )
    arrays, names = [], []
    for i, p in enumerate(exam_or_phases):
        if isinstance(p, Volume):
            arrays.append(np.asarray(p.array))
            names.append(p.name or f"phase {i}")
        else:
            arrays.append(np.asarray(p))
            names.append(f"phase {i}")
    return arrays, names


def build_channels(
    exam_or_phases: PhaseInput,
    channel_names: Sequence[str],
    normalization: str = "zscore",
    mask: np.ndarray | Volume | None = None,
) -> np.ndarray:
    """Stack the named channels of an exam into the network input.

    Args:
        exam_or_phases: a :class:`DCEExam`, a list of ``(z, y, x)`` arrays / Volumes ``[pre, post1, ...]``
            (e.g. training crops), or a ``(P, z, y, x)`` array.
        channel_names: e.g. ``["pre", "post1", "sub1"]``.
        normalization: ``zscore``, ``robust`` (per channel) or ``none``.
        mask: optional ``(z, y, x)`` array or Volume; non-zero voxels give the normalisation statistics.

    Returns:
        ``(C, z, y, x)`` float32 array, C = ``len(channel_names)``.

    Raises:
        InputError: unknown channel name or normalisation, a phase the exam lacks (e.g. ``post3`` on a
            2-post exam), phases of different shapes, non-3-D or non-finite phases, a mask of the wrong
            shape or an empty mask.
    """
    names = list(channel_names) if not isinstance(channel_names, str) else [channel_names]
    if not names:
        raise InputError("channel_names is empty; name at least one input channel (e.g. ['pre', 'post1', 'sub1'])")
    if normalization not in NORMALIZATIONS:
        raise InputError(f"unknown normalization {normalization!r}; expected one of {list(NORMALIZATIONS)}")
    parsed = [parse_channel_name(n) for n in names]
    arrays, phase_names = _phase_arrays(exam_or_phases)
    n_post = len(arrays) - 1
    for name, (_, k) in zip(names, parsed):
        if k > n_post:
            raise InputError(
                f"input channel {name!r} needs post-contrast phase {k}, but the exam has only {max(n_post, 0)} "
                f"post-contrast phase(s) ({len(arrays)} phases: {phase_names})"
            )
    used = sorted({k for _, k in parsed} | ({0} if any(kind == "sub" for kind, _ in parsed) else set()))
    shape = arrays[used[0]].shape
    for i in used:
        a = arrays[i]
        if a.ndim != 3:
            raise InputError(f"phase '{phase_names[i]}' must be a 3-D (z, y, x) array; got shape {a.shape}")
        if a.shape != shape:
            raise InputError(f"phase '{phase_names[i]}' has shape {a.shape}, but '{phase_names[used[0]]}' has {shape}")
        if not np.isfinite(a).all():
            raise InputError(f"phase '{phase_names[i]}' contains NaN or infinite values")
    inside: np.ndarray | None = None
    if mask is not None:
        m = np.asarray(mask.array if isinstance(mask, Volume) else mask)
        if m.shape != shape:
            raise InputError(f"normalisation mask has shape {m.shape}, but the phases have {shape}")
        inside = m != 0
        if not inside.any():
            raise InputError("normalisation mask is empty (no non-zero voxel); pass mask=None to use the whole volume")

    # float32 work arrays (the output precision) with float64 statistics: a 5-phase 160 x 448 x 448
    # exam needs ~one extra channel of memory, not float64 copies of every phase
    out = np.empty((len(names),) + tuple(shape), dtype=np.float32)
    for c, (kind, k) in enumerate(parsed):
        channel = out[c]
        if kind == "sub":
            np.subtract(arrays[k], arrays[0], out=channel, dtype=np.float32, casting="unsafe")
        else:
            channel[...] = arrays[k]
        if normalization != "none":
            values = channel[inside] if inside is not None else channel
            negligible = 1e-6 * max(float(np.abs(values).max()), 1.0)
            centre, spread = _centre_and_spread(values, normalization, negligible)
            channel -= np.float32(centre)
            if spread > negligible:
                channel /= np.float32(spread)
    return out


def _centre_and_spread(values: np.ndarray, normalization: str, negligible: float) -> tuple[float, float]:
    """Centre and scale of one channel's values: mean / std (``zscore``) or median / 1.4826 MAD (``robust``).

    ``robust`` falls back to the standard deviation where the MAD is not above ``negligible`` (more than half the
    values equal).
    """
    if normalization == "robust":
        flat = values.reshape(-1)
        median = float(np.median(flat))
        mad_sd = MAD_TO_SD * float(np.median(np.abs(flat - np.float32(median))))
        if mad_sd > negligible:
            return median, mad_sd
        return median, float(flat.std(dtype=np.float64))
    return float(values.mean(dtype=np.float64)), float(values.std(dtype=np.float64))
