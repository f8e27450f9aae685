"""Contrast kinetics of a lesion in a DCE exam: percent enhancement, SER, curve type, FTV, mean curve.

Definitions (``S0`` = pre-contrast signal, ``Se`` = early post-contrast phase, ``Sl`` = late phase):

- percent enhancement (PE) of a voxel in phase k: ``100 * (Sk - S0) / max(S0, F)``, where the noise floor
  ``F = pe_floor_fraction x`` the median pre-contrast signal inside the breast (or the body when no breast
  mask is known; :func:`pre_reference_signal`). A voxel whose pre-contrast signal is near 0 (fat-suppressed
  tissue, vessels, noise) would otherwise get a PE of thousands of percent from noise; relative to the breast's
  typical pre-contrast signal its enhancement is measured on the scale of the surrounding tissue. Without a
  reference (``F = 0``) the classic ``100 * (Sk - S0) / S0`` is used and voxels with ``S0 <= min_pre_signal``
  have no defined PE and are left out of every PE / SER / FTV figure (their count is reported as
  ``excluded_low_pre_voxel_count``).
- peak PE: the largest voxel PE of the early phase (with the floor above).
- enhancing voxels: early PE >= ``pe_threshold_percent`` (default 70 %, Hylton et al., Radiology 2012;
  263:663-672, the I-SPY 1 FTV definition).
- signal enhancement ratio (SER) of a voxel: ``(Se - S0) / (Sl - S0)`` (Hylton; undefined when the late
  phase is the early phase, e.g. a two-phase exam). Reported as the mean over
  enhancing voxels (``ser_mean``; voxels with ``Sl <= S0`` have an infinite SER and are left out of the
  mean), and as the SER of the lesion's mean curve (``ser_of_mean_curve``, ``None`` when ``Sl <= S0``).
- kinetic curve type (ACR BI-RADS MRI lexicon, 2nd ed. 2013, delayed-phase enhancement): the change of the
  lesion's mean signal from the early to the late phase relative to the early signal,
  ``late_change_percent = 100 * (Sl - Se) / Se``: > +10 % persistent, < -10 % washout, otherwise plateau.
  The same rule per enhancing voxel gives ``curve_type_fractions``.
- functional tumour volume (FTV): the volume of the lesion's enhancing voxels; with ``ftv_ser_min`` set,
  only enhancing voxels whose SER >= ``ftv_ser_min`` count (Hylton's FTV variants with an SER cut-off).
- mean time-intensity curve: per phase, the mean absolute signal over all lesion voxels and the mean
  voxel PE over voxels with a defined PE.

Undefined values are ``None`` (strict-JSON friendly), never NaN.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InputError
from ._inputs import finite_or_none

PERSISTENT = "persistent"
PLATEAU = "plateau"
WASHOUT = "washout"
#: late change (percent) within +-this is a plateau (BI-RADS delayed phase)
PLATEAU_BAND_PERCENT = 10.0
CURVE_TYPES = (PERSISTENT, PLATEAU, WASHOUT)
CURVE_TYPE_REFERENCE = (
    "ACR BI-RADS Atlas, MRI lexicon (2nd ed., 2013), delayed phase: change of signal from the early to the "
    "late phase relative to the early signal, > +10% persistent, within +/-10% plateau, < -10% washout"
)
PE_DEFINITION = (
    "100 * (Sk - S0) / max(S0, F): F = pe_floor_fraction x the median pre-contrast signal inside the breast "
    "(pre_reference_signal), so voxels with a pre-contrast signal near 0 are measured on the tissue's scale"
)
FTV_REFERENCE = "Hylton et al., Radiology 2012;263:663-672 (I-SPY 1): enhancing voxels with early PE >= threshold"


@dataclass(frozen=True)
class KineticsConfig:
    """Parameters of the kinetic analysis.

    Attributes:
        pe_threshold_percent: early percent enhancement at or above which a voxel is "enhancing" (FTV).
        early_phase: phase index of the early post-contrast phase (0 = pre; negative counts from the end).
        late_phase: phase index of the late (delayed) phase; default the last phase.
        ftv_ser_min: optional SER cut-off for the FTV (enhancing voxels with SER below it are left out).
        curve_threshold_percent: half width of the plateau band of the curve-type rule (10 %).
        min_pre_signal: without a noise floor, voxels whose pre-contrast signal is <= this have no defined PE.
        pe_floor_fraction: the PE denominator is at least this fraction of the reference pre-contrast signal
            (the breast's median; 0 = no floor).
    """

    pe_threshold_percent: float = 70.0
    early_phase: int = 1
    late_phase: int = -1
    ftv_ser_min: float | None = None
    curve_threshold_percent: float = PLATEAU_BAND_PERCENT
    min_pre_signal: float = 0.0
    pe_floor_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.pe_floor_fraction) and self.pe_floor_fraction >= 0):
            raise InputError(f"pe_floor_fraction must be a finite number >= 0, got {self.pe_floor_fraction}")
        if not np.isfinite(self.pe_threshold_percent):
            raise InputError(f"pe_threshold_percent must be a finite number, got {self.pe_threshold_percent}")
        if not np.isfinite(self.curve_threshold_percent) or self.curve_threshold_percent < 0:
            raise InputError(f"curve_threshold_percent must be >= 0, got {self.curve_threshold_percent}")
        if self.ftv_ser_min is not None and not np.isfinite(self.ftv_ser_min):
            raise InputError(f"ftv_ser_min must be a finite number or None, got {self.ftv_ser_min}")
        if not np.isfinite(self.min_pre_signal):
            raise InputError(f"min_pre_signal must be finite, got {self.min_pre_signal}")

    def resolve_phases(self, n_phases: int) -> tuple[int, int]:
        """Absolute (early, late) phase indices for an exam of ``n_phases`` phases.

        Raises:
            InputError: a phase is out of range, is the pre-contrast phase, or late < early.
        """
        out = []
        for name, value in (("early_phase", self.early_phase), ("late_phase", self.late_phase)):
            idx = value + n_phases if value < 0 else value
            if not 1 <= idx < n_phases:
                raise InputError(
                    f"{name}={value} is not a post-contrast phase of this exam (phases 1..{n_phases - 1}; "
                    f"0 is pre-contrast)"
                )
            out.append(idx)
        if out[1] < out[0]:
            raise InputError(f"late_phase={self.late_phase} comes before early_phase={self.early_phase}")
        return out[0], out[1]

    def to_dict(self) -> dict:
        """JSON-friendly parameters."""
        return asdict(self)


def classify_curve(late_change_percent: float | None, threshold_percent: float = PLATEAU_BAND_PERCENT) -> str | None:
    """Kinetic curve type from the early-to-late signal change (BI-RADS delayed phase rule)."""
    if late_change_percent is None or not np.isfinite(late_change_percent):
        return None
    if late_change_percent > threshold_percent:
        return PERSISTENT
    if late_change_percent < -threshold_percent:
        return WASHOUT
    return PLATEAU


def pre_reference_signal(pre: np.ndarray, region: np.ndarray | None = None) -> float:
    """The typical pre-contrast signal the PE noise floor is a fraction of.

    Args:
        pre: ``(z, y, x)`` pre-contrast signal.
        region: optional boolean mask of the breast (the median is taken there when it holds voxels); else the
            body: voxels above 10% of the pre signal's 99th percentile.

    Returns:
        The median pre-contrast signal of the region (0.0 when there is none).
    """
    pre = np.asarray(pre)
    if region is not None and np.any(region):
        values = pre[region]
    else:
        values = pre[pre > 0.1 * np.percentile(pre, 99.0)]
    return float(np.median(values)) if values.size else 0.0


def lesion_kinetics(
    signals: np.ndarray,
    config: KineticsConfig,
    voxel_volume_mm3: float,
    phase_names: list[str] | None = None,
    times_s: list[float] | None = None,
    pre_reference: float | None = None,
) -> dict:
    """Kinetic metrics of one lesion from its voxels' signals.

    Args:
        signals: ``(P, n)`` signal of the lesion's n voxels in each of the P phases (phase 0 = pre).
        config: analysis parameters.
        voxel_volume_mm3: volume of one voxel (mm3) for the FTV.
        phase_names: optional names of the P phases (for the curve).
        times_s: optional acquisition time of each phase in seconds.
        pre_reference: the breast's typical pre-contrast signal (:func:`pre_reference_signal`); the PE
            denominator is at least ``config.pe_floor_fraction`` times it. ``None``: no floor.

    Returns:
        JSON-ready dict (see the module docstring for every key's definition).
    """
    signals = np.asarray(signals, dtype=np.float64)
    if signals.ndim != 2 or signals.shape[0] < 2:
        raise InputError(f"signals must have shape (phases >= 2, voxels), got {signals.shape}")
    n_phases, n_vox = signals.shape
    early, late = config.resolve_phases(n_phases)
    if n_vox == 0:
        raise InputError("a lesion must have at least one voxel")
    has_delayed = late > early
    if config.ftv_ser_min is not None and not has_delayed:
        raise InputError(
            f"ftv_ser_min={config.ftv_ser_min} needs a late phase after the early phase "
            f"(early {early}, late {late} of {n_phases} phases)"
        )
    floor = config.pe_floor_fraction * float(pre_reference) if pre_reference else 0.0
    valid = signals[0] > config.min_pre_signal if floor <= 0 else np.ones(n_vox, dtype=bool)
    sv = signals[:, valid]
    pe = 100.0 * (sv - sv[0]) / np.maximum(sv[0], floor) if sv.shape[1] else np.zeros((n_phases, 0))
    enhancing = pe[early] >= config.pe_threshold_percent
    ser, voxel_change = _voxel_ser_and_change(sv, early, late, floor)
    ser_enh = ser[enhancing]
    ser_finite = ser_enh[np.isfinite(ser_enh)]
    ftv_sel = enhancing.copy()
    if config.ftv_ser_min is not None:
        ftv_sel &= np.nan_to_num(ser, nan=-np.inf) >= config.ftv_ser_min
    n_ftv = int(np.count_nonzero(ftv_sel))
    n_enh = int(np.count_nonzero(enhancing))
    fractions = _curve_type_fractions(voxel_change[enhancing], config.curve_threshold_percent) \
        if n_enh and has_delayed else None
    mean_signal = signals.mean(axis=1)
    late_change = None
    if has_delayed and mean_signal[early] > 0:
        late_change = 100.0 * (mean_signal[late] - mean_signal[early]) / mean_signal[early]
    den_mean = mean_signal[late] - mean_signal[0]
    ser_curve = (mean_signal[early] - mean_signal[0]) / den_mean if (den_mean > 0 and has_delayed) else None
    curve = _time_intensity_curve(mean_signal, pe, phase_names, times_s)
    return {
        "early_phase_index": early,
        "late_phase_index": late,
        "mean_pe_early_percent": finite_or_none(pe[early].mean()) if pe.shape[1] else None,
        "peak_pe_early_percent": finite_or_none(pe[early].max()) if pe.shape[1] else None,
        "ser_mean": finite_or_none(ser_finite.mean()) if len(ser_finite) else None,
        "ser_of_mean_curve": finite_or_none(ser_curve),
        "late_change_percent": finite_or_none(late_change),
        "kinetic_curve_type": classify_curve(late_change, config.curve_threshold_percent),
        "curve_type_fractions": fractions,
        "enhancing_voxel_count": n_enh,
        "excluded_low_pre_voxel_count": int(n_vox - np.count_nonzero(valid)),
        "pe_denominator_floor_signal": floor,
        "ftv_voxel_count": n_ftv,
        "ftv_mm3": n_ftv * float(voxel_volume_mm3),
        "ftv_ml": n_ftv * float(voxel_volume_mm3) / 1000.0,
        "time_intensity_curve": curve,
    }


def _voxel_ser_and_change(sv: np.ndarray, early: int, late: int, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Per voxel: SER ``(Se - S0) / (Sl - S0)`` (inf when only the early phase rose, NaN without a delayed phase)
    and the early-to-late change in percent (relative to ``max(Se, floor)``)."""
    num = sv[early] - sv[0]
    den = sv[late] - sv[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ser = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, np.nan))
        if late <= early:  # no delayed phase: SER undefined
            ser = np.full_like(ser, np.nan)
        change = 100.0 * (sv[late] - sv[early]) / np.maximum(sv[early], floor)
    return ser, change


def _curve_type_fractions(change_percent: np.ndarray, threshold_percent: float) -> dict[str, float]:
    """Share of the enhancing voxels per curve type (the BI-RADS rule applied per voxel)."""
    n = change_percent.size
    return {
        PERSISTENT: float(np.count_nonzero(change_percent > threshold_percent) / n),
        PLATEAU: float(np.count_nonzero(np.abs(change_percent) <= threshold_percent) / n),
        WASHOUT: float(np.count_nonzero(change_percent < -threshold_percent) / n),
    }


def _time_intensity_curve(mean_signal: np.ndarray, pe: np.ndarray, phase_names: list[str] | None,
                          times_s: list[float] | None) -> list[dict]:
    """Per phase: name, time, mean signal over the lesion, mean voxel PE over voxels with a defined PE."""
    n_phases = len(mean_signal)
    mean_pe = pe.mean(axis=1) if pe.shape[1] else np.full(n_phases, np.nan)
    return [
        {
            "phase_index": k,
            "phase_name": (phase_names[k] if phase_names and k < len(phase_names) else f"phase{k}"),
            "time_s": finite_or_none(times_s[k]) if times_s and k < len(times_s) else None,
            "mean_signal": finite_or_none(mean_signal[k]),
            "mean_percent_enhancement_percent": finite_or_none(mean_pe[k]),
        }
        for k in range(n_phases)
    ]
