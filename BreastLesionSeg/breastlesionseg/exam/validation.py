"""The one place that decides whether an exam is usable: every command and the Slicer logic call it.

* :func:`validate_exam` - an assembled exam: finite, non-constant phases on one grid, estimated memory within
  the budget, plausible phase order (the pre-contrast phase is the least enhanced);
* :func:`preflight_phase_files` - before any voxel is read: the memory estimate from the files' headers;
* :func:`require_overlap` / :func:`coverage_fraction` - phases on other grids: overlap and the share of the
  pre-contrast voxels they fill;
* file-level damage (truncated / NaN NIfTI, truncated NRRD) is refused by
  :func:`~breastlesionseg.io.volume_io.read_volume` when a file is read.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import GeometryError, InputError
from ..geometry import Geometry, Volume
from ..io.volume_io import check_volume_values

__all__ = [
    "ExamChecks",
    "PhaseOrderCheck",
    "check_phase_order_signal",
    "check_volume_values",
    "coverage_fraction",
    "default_memory_budget_bytes",
    "estimate_exam_memory_bytes",
    "overlap_fraction",
    "preflight_phase_files",
    "require_memory_budget",
    "require_overlap",
    "require_plausible_phase_order",
    "validate_exam",
]

log = logging.getLogger(__name__)


def overlap_fraction(moving: Geometry, fixed: Geometry, samples_per_axis: int = 9) -> float:
    """Fraction of ``moving``'s physical extent that lies inside ``fixed``'s extent.

    The extent of a grid is the box of its voxels (voxel centres +- half a voxel). ``moving`` is sampled on a
    regular ``samples_per_axis``^3 lattice spanning its extent; each sample is mapped into ``fixed``'s index
    space, so oblique directions are handled exactly.

    Returns:
        A value in [0, 1]; 0 means the two volumes do not overlap in space.
    """
    axes = [np.linspace(-0.5, s - 0.5, samples_per_axis) for s in moving.size]
    ijk = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    lps = moving.index_to_lps(ijk)
    idx = fixed.lps_to_index(lps)
    size = np.asarray(fixed.size, dtype=float)
    tol = 1e-6
    inside = np.all((idx >= -0.5 - tol) & (idx <= size - 0.5 + tol), axis=1)
    return float(inside.mean())


def coverage_fraction(covered: Geometry, source: Geometry, samples_per_axis: int = 33) -> float:
    """Share of ``covered``'s voxels that receive data when ``source``'s image is resampled onto them.

    This is the resampler's rule (SimpleITK linear/nearest): a target voxel gets a value when its *centre*
    lies within half a voxel of ``source``'s voxel centres, i.e. inside ``source``'s voxel box. Voxel centres
    of ``covered`` are sampled on a lattice of at most ``samples_per_axis`` per axis that includes the first
    and last voxel of every axis, so a grid shifted by less than half a voxel, or one with another spacing,
    direction or axis order over the same field of view, covers 100%.

    Returns:
        A value in [0, 1].
    """
    axes = [np.unique(np.round(np.linspace(0, s - 1, min(int(s), samples_per_axis)))) for s in covered.size]
    ijk = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    idx = source.lps_to_index(covered.index_to_lps(ijk))
    size = np.asarray(source.size, dtype=float)
    tol = 1e-3  # voxels: rounding of origins/spacings written as text
    inside = np.all((idx >= -0.5 - tol) & (idx <= size - 0.5 + tol), axis=1)
    return float(inside.mean())


def require_overlap(moving: Volume, fixed: Volume, min_fraction: float = 0.0) -> float:
    """Raise :class:`GeometryError` naming both volumes when ``moving`` does not overlap ``fixed`` in space.

    Args:
        moving: the phase to check (e.g. a post-contrast phase).
        fixed: the reference (the pre-contrast phase).
        min_fraction: smallest accepted fraction of ``moving``'s extent inside ``fixed`` (0 = any overlap).

    Returns:
        The overlap fraction.
    """
    frac = overlap_fraction(moving.geometry, fixed.geometry)
    fixed_frac = overlap_fraction(fixed.geometry, moving.geometry)
    if frac <= min_fraction and fixed_frac <= min_fraction:
        lo_m, hi_m = _extent(moving.geometry)
        lo_f, hi_f = _extent(fixed.geometry)
        raise GeometryError(
            f"'{moving.source or moving.name}' and '{fixed.source or fixed.name}' do not overlap in space "
            f"(overlap {100 * max(frac, fixed_frac):.0f}%): LPS extent {_fmt(lo_m)}..{_fmt(hi_m)} mm vs "
            f"{_fmt(lo_f)}..{_fmt(hi_f)} mm. Are they from the same exam (same patient position, same frame of "
            f"reference)?"
        )
    return max(frac, fixed_frac)


def _extent(geo: Geometry) -> tuple[np.ndarray, np.ndarray]:
    corners = geo.corners_lps()
    return corners.min(axis=0), corners.max(axis=0)


def _fmt(v: np.ndarray) -> str:
    return "(" + ", ".join(f"{x:.1f}" for x in v) + ")"


# ---------------------------------------------------------------------------------------------------------------
# phase order from the signal


@dataclass(frozen=True)
class PhaseOrderCheck:
    """How the phases' signal rises in the voxels that change most over time.

    Attributes:
        mean_signal: per phase, the mean signal over the dynamic voxels (the 1% of the body foreground whose
            signal changes most between phases; sampled on every ``stride``-th voxel per axis).
        relative_range: ``(max - min)`` of ``mean_signal`` over the foreground's 99th percentile of the
            pre-contrast signal: below :data:`MIN_MEASURABLE_ENHANCEMENT` nothing enhances measurably.
        least_enhanced: index of the phase with the lowest ``mean_signal``.
        names: phase names, in the given order.
    """

    mean_signal: tuple[float, ...]
    relative_range: float
    least_enhanced: int
    names: tuple[str, ...]

    @property
    def measurable(self) -> bool:
        """Whether the phases differ enough to judge their order."""
        return self.relative_range >= MIN_MEASURABLE_ENHANCEMENT

    @property
    def pre_excess(self) -> float:
        """How far the first phase lies above the least enhanced one, as a share of the phases' range."""
        span = max(self.mean_signal) - min(self.mean_signal)
        return (self.mean_signal[0] - min(self.mean_signal)) / span if span > 0 else 0.0

    @property
    def plausible(self) -> bool:
        """The first (pre-contrast) phase is the least enhanced, within :data:`PRE_EXCESS_TOLERANCE`."""
        return not self.measurable or self.pre_excess <= PRE_EXCESS_TOLERANCE

    def describe(self) -> str:
        """``pre=812, post1=1404, ...`` (mean signal of the dynamic voxels per phase)."""
        return ", ".join(f"{n}={m:.4g}" for n, m in zip(self.names, self.mean_signal))


#: the phases' mean dynamic signal must span at least this share of the pre signal's 99th percentile
MIN_MEASURABLE_ENHANCEMENT = 0.05
#: the first phase may lie this share of the phases' range above the least enhanced one (noise, fat saturation)
PRE_EXCESS_TOLERANCE = 0.15
_MAX_SAMPLED_VOXELS = 2_000_000


def check_phase_order_signal(phases: Sequence[np.ndarray], names: Sequence[str] | None = None) -> PhaseOrderCheck:
    """Measure which phase is the least enhanced inside the body (the pre-contrast phase should be).

    Contrast agent only raises the T1-weighted signal, so in the voxels whose signal changes most over the
    exam (vessels, heart, enhancing tissue and lesions) the pre-contrast phase has the lowest mean signal.
    Phases given in reverse time order put the most enhanced phase first.

    Args:
        phases: ``P >= 2`` arrays ``(z, y, x)`` on one grid, in the given order (first = claimed pre-contrast).
        names: phase names for the messages (default ``phase0, phase1 ...``).

    Returns:
        The measurement; see :attr:`PhaseOrderCheck.plausible`.
    """
    names = tuple(names) if names is not None else tuple(f"phase{k}" for k in range(len(phases)))
    stride = max(1, int(np.ceil((phases[0].size / _MAX_SAMPLED_VOXELS) ** (1 / 3))))
    stack = np.stack([np.asarray(p[::stride, ::stride, ::stride], dtype=np.float32) for p in phases])
    brightest = stack.max(axis=0)
    # exact zeros are the fill value of a phase resampled from a grid that does not cover every voxel
    body = (brightest > 0.2 * np.percentile(brightest, 99.5)) & np.all(stack != 0, axis=0)
    if np.count_nonzero(body) < 100:
        body = np.ones(brightest.shape, dtype=bool)
    change = (brightest - stack.min(axis=0))[body]
    dynamic = change >= np.percentile(change, 99.0)
    mean_signal = tuple(float(s[body][dynamic].mean()) for s in stack)
    scale = float(np.percentile(stack[0][body], 99.0))
    span = max(mean_signal) - min(mean_signal)
    return PhaseOrderCheck(mean_signal, span / scale if scale > 0 else 0.0, int(np.argmin(mean_signal)), names)


def require_plausible_phase_order(phases: Sequence[Volume], accept: bool = False) -> str | None:
    """Refuse (or, with ``accept``, warn about) phases whose first one is not the least enhanced.

    Args:
        phases: the exam's phases on one grid, first = pre-contrast.
        accept: proceed anyway; the returned warning must then be shown and recorded (``metrics.json``).

    Returns:
        ``None`` when the order is plausible or cannot be judged, else the WARNING text (``accept`` only).

    Raises:
        InputError: the order is implausible and ``accept`` is false; the message names the order given, the
            least enhanced phase and how to proceed.
    """
    names = [p.name or p.source or f"phase{k}" for k, p in enumerate(phases)]
    check = check_phase_order_signal([p.array for p in phases], names)
    if check.plausible:
        if not check.measurable:
            log.info("phase order not checked: the phases differ by %.1f%% of the pre signal only (%s)",
                     100 * check.relative_range, check.describe())
        return None
    reversed_order = check.least_enhanced == len(phases) - 1 and list(check.mean_signal) == sorted(
        check.mean_signal, reverse=True)
    text = (
        f"implausible phase order {' -> '.join(names)}: the first phase must be the pre-contrast one, the least "
        f"enhanced inside the body, but '{names[check.least_enhanced]}' is the least enhanced (mean signal of the "
        f"most dynamic voxels: {check.describe()})"
        + ("; the phases look reversed (latest first)" if reversed_order else "")
        + ". Percent enhancement, kinetic curves and FTV would be wrong."
    )
    if not accept:
        raise InputError(text + " Pass the phases in time order, pre-contrast first (or --accept-phase-order to "
                                "proceed anyway; the warning is recorded in metrics.json).")
    log.warning("%s", text)
    return "WARNING: " + text + " Proceeding because the phase order was accepted explicitly."


# ---------------------------------------------------------------------------------------------------------------
# size / memory budget from the headers


#: peak resident bytes per voxel of the pre grid: per phase (float32 array + resampling/stacking copies) ...
PEAK_BYTES_PER_VOXEL_PER_PHASE = 8
#: ... plus the per-voxel working set independent of the phase count (derived maps, breast mask, probabilities)
PEAK_BYTES_PER_VOXEL_FIXED = 16
#: environment variable overriding the memory budget (GiB) of every command
MEMORY_BUDGET_ENV = "BREASTLESIONSEG_MAX_MEMORY_GB"


def default_memory_budget_bytes() -> int:
    """``$BREASTLESIONSEG_MAX_MEMORY_GB`` GiB, else 80% of this machine's physical memory.

    Raises:
        InputError: the environment variable is not a positive number.
    """
    text = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    if text:
        try:
            gib = float(text)
        except ValueError:
            gib = -1.0
        if not (gib > 0 and np.isfinite(gib)):
            raise InputError(f"{MEMORY_BUDGET_ENV}={text!r} must be a positive number of GiB")
        return int(gib * (1 << 30))
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 16 << 30
    return int(0.8 * physical)


def estimate_exam_memory_bytes(size_xyz: Sequence[int], n_phases: int) -> int:
    """Peak memory (bytes) of processing ``n_phases`` phases on a grid of ``size_xyz`` voxels.

    A linear model of the measured peak resident memory (1024 x 1024 x 400, 2 phases: 12.7 GB):
    ``voxels x (8 n_phases + 16)`` bytes.
    """
    voxels = int(np.prod([int(s) for s in size_xyz], dtype=np.int64))
    return voxels * (PEAK_BYTES_PER_VOXEL_PER_PHASE * int(n_phases) + PEAK_BYTES_PER_VOXEL_FIXED)


def require_memory_budget(size_xyz: Sequence[int], n_phases: int, source: str, budget_bytes: int | None = None) -> int:
    """Refuse an exam whose estimated peak memory exceeds the budget, before its voxels are read.

    Args:
        size_xyz: grid size of the largest phase (voxels along x, y, z).
        n_phases: number of phases.
        source: what to name in the message (the pre-contrast file or the DICOM folder).
        budget_bytes: the budget (default :func:`default_memory_budget_bytes`).

    Returns:
        The estimate in bytes.

    Raises:
        InputError: naming the grid, the estimate, the budget and what to do.
    """
    budget = default_memory_budget_bytes() if budget_bytes is None else int(budget_bytes)
    estimate = estimate_exam_memory_bytes(size_xyz, n_phases)
    if estimate > budget:
        raise InputError(
            f"'{source}': {n_phases} phases of {' x '.join(str(int(s)) for s in size_xyz)} voxels need about "
            f"{estimate / (1 << 30):.1f} GiB of memory, more than the budget of {budget / (1 << 30):.1f} GiB. "
            f"Resample the phases to a coarser grid (about 0.7-1 mm in-plane is enough for breast DCE-MRI) or "
            f"crop them, or raise the budget with {MEMORY_BUDGET_ENV}."
        )
    return estimate


def read_header_size(path: Path) -> tuple[int, ...] | None:
    """Grid size ``(x, y, z)`` from headers only: an image file's, or a DICOM series folder's files.

    For a folder, ``z`` is the number of slice files of its first DICOM series (times the frames per file).

    Returns:
        The size, or ``None`` when no header could be read (the reader gives the full message later).
    """
    if path.is_dir():
        return _dicom_folder_header_size(path)
    if not path.is_file():
        return None
    header = _file_header_size(path)
    return None if header is None else header[:3]


def _file_header_size(path: Path) -> tuple[int, ...] | None:
    """The header's size of one image file (``None`` when unreadable)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    return tuple(int(s) for s in reader.GetSize())


def _dicom_folder_header_size(folder: Path) -> tuple[int, int, int] | None:
    """``(columns, rows, slices)`` of the first DICOM series in ``folder``, from file headers only."""
    try:
        series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series[0]) if series else ()
    except RuntimeError:
        return None
    if not files:
        return None
    first = _file_header_size(Path(files[0]))
    if first is None:
        return None
    frames = first[2] if len(first) > 2 else 1
    return first[0], first[1], len(files) * max(frames, 1)


def preflight_phase_files(paths: Sequence[Path], budget_bytes: int | None = None) -> int | None:
    """Header-only check of phase files before any voxel is read: the memory estimate against the budget.

    Returns:
        The estimated peak memory in bytes (``None`` when no header could be read).
    """
    sizes = [s for s in (read_header_size(Path(p)) for p in paths) if s is not None]
    if not sizes:
        return None
    largest = max(sizes, key=lambda s: int(np.prod(s, dtype=np.int64)))
    return require_memory_budget(largest, len(paths), str(paths[0]), budget_bytes)


# ---------------------------------------------------------------------------------------------------------------
# the one exam check


@dataclass(frozen=True)
class ExamChecks:
    """What :func:`validate_exam` enforces (one typed place for the CLI, the dataset tools and Slicer).

    Attributes:
        memory_budget_bytes: refuse exams whose estimated peak memory exceeds this (``None``: default budget).
        accept_phase_order: proceed with a recorded WARNING when the first phase is not the least enhanced.
    """

    memory_budget_bytes: int | None = None
    accept_phase_order: bool = False


def validate_exam(phases: Sequence[Volume], checks: ExamChecks | None = None) -> list[str]:
    """Check an assembled exam: finite non-constant phases on one grid, size within budget, plausible order.

    Used by :func:`~breastlesionseg.exam.loader.load_exam` (every command) and by the Slicer logic for phases
    taken from the scene. File-level checks (truncation, NaN/Inf hidden by the NIfTI reader) happen when files
    are read (:func:`~breastlesionseg.io.volume_io.read_volume`).

    Args:
        phases: pre-contrast first, then post-contrast in time order, all on the pre-contrast grid.
        checks: limits and policies (default :class:`ExamChecks`).

    Returns:
        WARNING texts to show and to record (``DCEExam.warnings`` -> ``metrics.json``); empty when all is well.

    Raises:
        InputError: fewer than two phases, a phase empty/constant/non-finite, over the memory budget, implausible
            phase order (unless accepted). GeometryError: a phase is not on the pre-contrast grid.
    """
    checks = checks or ExamChecks()
    if len(phases) < 2:
        raise InputError(f"a DCE exam needs a pre-contrast and at least one post-contrast phase; got {len(phases)}")
    ref = phases[0]
    for vol in phases:
        check_volume_values(vol)
        if not vol.geometry.same_grid(ref.geometry):
            raise GeometryError(f"phase '{vol.name or vol.source}' is not on the pre-contrast grid of "
                                f"'{ref.name or ref.source}'; resample it first")
    require_memory_budget(ref.geometry.size, len(phases), ref.source or ref.name, checks.memory_budget_bytes)
    warning = require_plausible_phase_order(phases, accept=checks.accept_phase_order)
    return [warning] if warning else []
