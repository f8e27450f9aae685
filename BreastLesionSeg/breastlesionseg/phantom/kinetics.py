"""Signal intensities and contrast-enhancement curves of the phantom's tissues and lesions.

Percent enhancement of a voxel at post phase k is ``PE_k = 100 * (S_k - S_pre) / S_pre``.
Times are seconds after contrast injection (post phase k at ``config.post_times_s[k-1]``).

Tissue curves (percent enhancement vs time t, s; ``t_last`` = time of the last post phase):
    * fat: 3 % (flat); skin: 30 % * (t / t_last)^0.6; pectoral / chest-wall muscle: 25 % * (t / t_last)^0.6;
    * fibroglandular tissue (background parenchymal enhancement, persistent):
      ``bpe_percent * factor * (t / t_last)^0.7``, ``factor`` a patchy map ~0.3-2 (mean ~1);
    * blood (heart blood pool, great vessels): ``B * (0.62 + 0.38 exp(-(t - t1) / 150 s))`` with the
      first-pass peak ``B`` drawn per seed in 260-380 %; vessels (tubes, partial volume) 0.9 x blood;
      myocardium 120 % -> 95 %. On the subtraction image the blood is as bright as the lesions (its
      percent enhancement is higher), so a trivial threshold picks the heart and vessels too;
    * liver 35 % rising to 70 % (portal venous phase), lung 10 %, mediastinal fat 5 %, bone 5 %;
    * benign cysts (0-2 per breast, 4-12 mm, T1-dark): 0 %.

Lesion curves (wash-in, then one of three late behaviours), with ``E`` = early percent enhancement
(first post phase, mass 90-200 %, non-mass 70-140 %) and ``r`` = relative signal change from the first
to the last post phase::

    S_1 = S_pre * (1 + h * E / 100)                 (h: internal heterogeneity map, ~0.45-1.15)
    S_k = S_1 * (1 + r * (t_k - t_1) / (t_last - t_1))

    persistent: r in [+0.18, +0.35]  (late signal rises  > +10 %)
    plateau:    r in [-0.04, +0.04]  (late signal within +-10 %)
    washout:    r in [-0.30, -0.18]  (late signal falls  > 10 %)

so the classic early/late classification with a +-10 % threshold (:func:`classify_curve`) recovers
the type from the lesion's mean curve with a wide margin.
"""
from __future__ import annotations

import math

import numpy as np

from .anatomy import (
    AIR, BLOOD, BONE, CHEST_WALL, CYST, FAT, GLAND, LIVER, LUNG, MEDIASTINUM, MUSCLE, MYOCARDIUM, SKIN,
    TISSUE_NAMES,
)

KINETIC_TYPES = ("persistent", "plateau", "washout")

#: late relative signal change range (first -> last post phase) of each kinetic type
LATE_CHANGE_RANGE = {"persistent": (0.18, 0.35), "plateau": (-0.04, 0.04), "washout": (-0.30, -0.18)}
#: classification threshold on the relative late change (the usual +-10 %)
CLASSIFY_THRESHOLD = 0.10

#: nominal pre-contrast signal per tissue at intensity scale 1: (fat-saturated, non-fat-saturated);
#: each seed multiplies every tissue's value by its own factor in ``generator.CONTRAST_JITTER`` (0.9-1.1)
PRE_SIGNAL = {
    AIR: (0.0, 0.0),
    SKIN: (380.0, 450.0),
    FAT: (180.0, 900.0),
    GLAND: (420.0, 380.0),  # pure fibroglandular tissue (mixed with FAT by the fgt fraction)
    MUSCLE: (140.0, 300.0),  # fat-saturated T1: muscle a little darker than suppressed fat (as in the Duke exam)
    CHEST_WALL: (130.0, 320.0),
    BONE: (120.0, 750.0),
    LUNG: (35.0, 40.0),
    BLOOD: (200.0, 280.0),
    MYOCARDIUM: (150.0, 300.0),
    MEDIASTINUM: (175.0, 850.0),
    LIVER: (165.0, 420.0),
    CYST: (150.0, 200.0),  # fluid: T1-dark, never enhances
}
BLOOD_PRE = PRE_SIGNAL[BLOOD]
#: lesion pre-contrast signal relative to pure fibroglandular tissue
LESION_PRE_RELATIVE = (0.85, 1.0)


def _ramp(t: float, t_last: float, power: float) -> float:
    return (t / t_last) ** power


#: range of the per-seed first-pass blood enhancement peak (percent)
BLOOD_PEAK_RANGE_PERCENT = (260.0, 380.0)


def blood_enhancement_percent(t_s: float, post_times_s: tuple[float, ...], peak_percent: float = 300.0) -> float:
    """Percent enhancement of blood at time ``t_s`` (0 before injection)."""
    if t_s <= 0:
        return 0.0
    return peak_percent * (0.62 + 0.38 * math.exp(-max(t_s - post_times_s[0], 0.0) / 150.0))


def tissue_enhancement_percent(tissue: int, t_s: float, post_times_s: tuple[float, ...],
                               blood_peak_percent: float = 300.0, muscle_percent: float = 25.0,
                               skin_percent: float = 30.0) -> float:
    """Percent enhancement of a tissue class at time ``t_s`` (fibroglandular: per unit BPE, see module doc).

    ``muscle_percent`` / ``skin_percent``: pectoral-chest-wall / skin enhancement at the last phase.
    """
    t1, t_last = post_times_s[0], post_times_s[-1]
    decay = math.exp(-max(t_s - t1, 0.0) / 150.0)
    if tissue == FAT:
        return 3.0
    if tissue == SKIN:
        return skin_percent * _ramp(t_s, t_last, 0.6)
    if tissue in (MUSCLE, CHEST_WALL):
        return muscle_percent * _ramp(t_s, t_last, 0.6)
    if tissue == GLAND:
        return 100.0 * _ramp(t_s, t_last, 0.7)  # scaled by bpe_percent / 100 * factor
    if tissue == BLOOD:
        return blood_enhancement_percent(t_s, post_times_s, blood_peak_percent)
    if tissue == MYOCARDIUM:
        return 95.0 + 25.0 * decay
    if tissue == LUNG:
        return 10.0
    if tissue == LIVER:
        return 35.0 + 35.0 * _ramp(t_s, t_last, 1.0)
    if tissue in (MEDIASTINUM, BONE):
        return 5.0
    if tissue in (AIR, CYST):
        return 0.0
    raise ValueError(f"unknown tissue class {tissue}")


def vessel_enhancement_percent(t_s: float, post_times_s: tuple[float, ...], blood_peak_percent: float = 300.0) -> float:
    """Percent enhancement of the vessel tubes at time ``t_s`` (0.9 x blood: partial volume)."""
    return 0.9 * blood_enhancement_percent(t_s, post_times_s, blood_peak_percent)


def lesion_curve_relative(early_percent: float, late_change: float, post_times_s: tuple[float, ...]) -> np.ndarray:
    """Signal relative to pre (S_k / S_pre) of a full-strength (h = 1) lesion voxel, shape (1 + n_post,)."""
    t = np.asarray(post_times_s, dtype=float)
    span = max(t[-1] - t[0], 1e-6)
    s1 = 1.0 + early_percent / 100.0
    return np.concatenate([[1.0], s1 * (1.0 + late_change * (t - t[0]) / span)])


def classify_curve(mean_signal: np.ndarray, threshold: float = CLASSIFY_THRESHOLD) -> str:
    """Classify a mean time-signal curve ``[S_pre, S_post1, ..., S_postK]`` from the first and last post phase.

    Returns ``"persistent"`` (late change > +threshold), ``"washout"`` (< -threshold) or ``"plateau"``.
    """
    s = np.asarray(mean_signal, dtype=float)
    if s.ndim != 1 or s.size < 3:
        raise ValueError(f"need [pre, post1, ..., postK] with K >= 2, got shape {s.shape}")
    change = (s[-1] - s[1]) / max(abs(s[1]), 1e-9)
    if change > threshold:
        return "persistent"
    if change < -threshold:
        return "washout"
    return "plateau"


__all__ = [
    "KINETIC_TYPES", "LATE_CHANGE_RANGE", "PRE_SIGNAL", "TISSUE_NAMES", "classify_curve",
    "lesion_curve_relative", "tissue_enhancement_percent", "vessel_enhancement_percent",
]
