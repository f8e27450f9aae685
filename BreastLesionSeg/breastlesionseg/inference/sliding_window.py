"""Sliding-window lesion-probability inference on the model grid (MONAI, Gaussian blending).

Wraps :func:`monai.inferers.sliding_window_inference` with a predictor that

* checks a cancel token before every window batch (raises :class:`~breastlesionseg.errors.CancelledError`),
* reports window progress,
* runs the network under float16 autocast on CUDA,
* turns segmentation logits into probabilities (``sigmoid``) so windows and flips are blended in
  probability space, and
* collects the per-window ACT (auxiliary classification task) "lesion present" probabilities,
  from which the exam-level ACT score is the maximum over windows that cover the breast region.

Out-of-memory errors halve ``sw_batch_size`` and, at 1 on a GPU, fall back to the CPU; every
fallback is logged and returned in :attr:`WindowPrediction.notes`.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from monai.data.utils import dense_patch_slices
from monai.inferers import sliding_window_inference
from scipy import ndimage

from ..errors import CancelledError, InputError, ModelError
from ..progress import CancelToken
from .device import autocast_context, free_device_memory, is_out_of_memory, torch_threads

log = logging.getLogger(__name__)

#: a window must have at least this fraction of its voxels in the breast region to count for the exam-level
#: ACT score. Windows that barely touch the breast (chest wall, heart, air; never seen by training, whose
#: patches are centred in the breast) gave 0.96-0.999 on lesion-free phantoms at 0.05. Chosen on validation
#: phantoms 2000-2019 with the demo model: at 0.5 lesion exams score >= 0.996, lesion-free ones <= 0.88.
ACT_MIN_BREAST_FRACTION = 0.5
#: with ``skip_outside_mask``, windows are skipped when they miss the breast mask dilated by this many voxels
SKIP_DILATION_VOXELS = 2


@dataclass
class WindowPrediction:
    """Output of :func:`predict_probability`.

    Attributes:
        probability: lesion probability on the model grid, shape (z, y, x), float32 in [0, 1].
        act_score: exam-level ACT lesion-presence probability in [0, 1], or ``None`` when the
            network has no ACT head.
        window_act: per-window ACT probabilities of the un-flipped pass (window order).
        n_windows: windows per pass (without test-time flips).
        n_passes: passes (1 + number of flips).
        device: device the inference finally ran on.
        sw_batch_size: windows per forward pass finally used.
        notes: human-readable notes (out-of-memory fallbacks).
        skipped_windows: windows (over all passes) not run because they lie outside the breast region.
    """

    probability: np.ndarray
    act_score: float | None
    window_act: list[float]
    n_windows: int
    n_passes: int
    device: torch.device
    sw_batch_size: int
    notes: list[str] = field(default_factory=list)
    skipped_windows: int = 0


def forward_seg_act(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``model`` on ``x`` (N, C, z, y, x) -> (seg logits (N, L, z, y, x), ACT logits (N, 2) or None)."""
    if hasattr(model, "forward_with_aux"):
        seg, act = model.forward_with_aux(x)
    else:
        seg, act = model(x), None
    return seg, act


def count_windows(image_size_zyx: Sequence[int], roi_size_zyx: Sequence[int], overlap: float) -> int:
    """Number of windows MONAI's sliding window visits for this image, window and overlap."""
    image = [max(int(i), int(r)) for i, r in zip(image_size_zyx, roi_size_zyx)]
    interval = []
    for i, r in zip(image, roi_size_zyx):
        if int(r) == i:
            interval.append(int(r))
        else:
            interval.append(max(1, int(int(r) * (1.0 - overlap))))
    return len(dense_patch_slices(image, [int(r) for r in roi_size_zyx], interval))


def _pad_like_monai(array: np.ndarray, roi_size_zyx: Sequence[int]) -> np.ndarray:
    """Pad a (z, y, x) array as ``sliding_window_inference`` pads inputs smaller than the window."""
    pads = []
    for s, r in zip(array.shape, roi_size_zyx):
        diff = max(int(r) - int(s), 0)
        pads.append((diff // 2, diff - diff // 2))
    return np.pad(array, pads) if any(p != (0, 0) for p in pads) else array


def _one_pass(
    model: torch.nn.Module,
    x: torch.Tensor,
    roi_size_zyx: tuple[int, int, int],
    sw_batch_size: int,
    overlap: float,
    blend_mode: str,
    sigma_scale: float,
    device: torch.device,
    amp: bool,
    coverage: np.ndarray | None,
    skip_region: np.ndarray | None,
    on_window: Callable[[int], None],
    cancel: CancelToken | None,
) -> tuple[torch.Tensor, list[tuple[float, float]], int]:
    """One sliding-window pass.

    Returns:
        (probability (1, 1, z, y, x) on CPU, [(act_prob, breast_fraction)] of the windows run,
        number of windows skipped because they hold no voxel of ``skip_region``).
    """
    acts: list[tuple[float, float]] = []
    skipped = [0]
    cov = None if coverage is None else _pad_like_monai(coverage.astype(np.float32), roi_size_zyx)
    region = None if skip_region is None else _pad_like_monai(skip_region, roi_size_zyx)

    def predictor(patch: torch.Tensor, coords: list) -> torch.Tensor:
        if cancel is not None and cancel.is_set():
            raise CancelledError("segmentation cancelled by the user")
        keep = list(range(len(coords)))
        if region is not None:
            keep = [n for n, window in enumerate(coords) if region[tuple(window[2:])].any()]
        out = torch.zeros((patch.shape[0], 1, *patch.shape[2:]), dtype=torch.float32, device=patch.device)
        skipped[0] += len(coords) - len(keep)
        if keep:
            sub = patch if len(keep) == len(coords) else patch[keep]
            with torch.inference_mode(), autocast_context(device, amp):
                seg, act = forward_seg_act(model, sub)
            if seg.ndim != 5:
                raise ModelError(
                    f"the model returned segmentation logits of shape {tuple(seg.shape)}; expected (N, L, z, y, x)"
                )
            out[keep] = torch.sigmoid(seg[:, :1].float())
            if act is not None:
                act_prob = torch.softmax(act.float(), dim=1)[:, 1].cpu().numpy()
                for m, n in enumerate(keep):
                    frac = 1.0 if cov is None else float(cov[tuple(coords[n][2:])].mean())
                    acts.append((float(act_prob[m]), frac))
        on_window(len(coords))
        return out

    out = sliding_window_inference(
        x,
        roi_size=list(roi_size_zyx),
        sw_batch_size=sw_batch_size,
        predictor=predictor,
        overlap=overlap,
        mode=blend_mode,
        sigma_scale=sigma_scale,
        sw_device=device,
        device=device,
        with_coord=True,
    )
    return out.float().cpu(), acts, skipped[0]


def predict_probability(
    model: torch.nn.Module,
    channels: np.ndarray,
    roi_size_zyx: Sequence[int],
    *,
    overlap: float = 0.25,
    blend_mode: str = "gaussian",
    sigma_scale: float = 0.125,
    sw_batch_size: int = 1,
    device: torch.device | str = "cpu",
    amp: bool = True,
    flips: Sequence[tuple[int, ...]] = (),
    breast_mask: np.ndarray | None = None,
    skip_outside_mask: bool = False,
    progress: Callable[[float, str], None] | None = None,
    cancel: CancelToken | None = None,
) -> WindowPrediction:
    """Lesion probability of a whole (cropped, resampled) exam by sliding-window inference.

    Args:
        model: network in eval mode with ``forward(x) -> (N, L, z, y, x)`` logits (channel 0 = lesion)
            and optionally ``forward_with_aux(x) -> (logits, act_logits (N, 2))``.
        channels: model input, shape (C, z, y, x), float32, already normalised.
        roi_size_zyx: window size (z, y, x) in voxels.
        overlap: window overlap fraction in [0, 1).
        blend_mode: "gaussian" or "constant".
        sigma_scale: Gaussian sigma relative to the window size.
        sw_batch_size: windows per forward pass (halved on out-of-memory).
        device: where the network runs; the model is moved there.
        amp: float16 autocast on CUDA.
        flips: test-time flips, each a tuple of spatial axes of (z, y, x); the un-flipped pass always runs.
        breast_mask: optional (z, y, x) mask on the same grid; only windows with at least
            ``ACT_MIN_BREAST_FRACTION`` of breast voxels count for the ACT score.
        skip_outside_mask: do not run the network on windows without a voxel of the breast mask
            dilated by ``SKIP_DILATION_VOXELS`` (their probability is 0). Use it only when the result is
            restricted to the breast afterwards: then it changes nothing inside the breast and saves the
            windows of the crop's empty corners.
        progress: ``f(fraction, message)`` with the fraction of windows done (0..1).
        cancel: object with ``is_set()``; checked before every window batch.

    Returns:
        The blended probability map and the ACT score, see :class:`WindowPrediction`.

    Raises:
        CancelledError: ``cancel`` was set.
        InputError: ``channels`` is not (C, z, y, x) or the window size is invalid.
    """
    channels, roi = _checked_input(channels, roi_size_zyx, breast_mask)
    flip_list: list[tuple[int, ...]] = [()] + [tuple(int(a) for a in f) for f in flips]
    n_windows = count_windows(channels.shape[1:], roi, overlap)
    x_cpu = torch.from_numpy(np.ascontiguousarray(channels, dtype=np.float32))[None]
    coverage = None if breast_mask is None else (np.asarray(breast_mask) > 0)
    skip_region = None
    if skip_outside_mask and coverage is not None:
        skip_region = ndimage.binary_dilation(coverage, iterations=SKIP_DILATION_VOXELS)
    settings = _PassSettings(roi, overlap, blend_mode, sigma_scale, amp, n_windows * len(flip_list), progress, cancel)
    device = torch.device(device)
    batch = int(sw_batch_size)
    notes: list[str] = []
    while True:
        try:
            prob_sum, first_acts, all_acts, skipped_total = _all_passes(model, x_cpu, flip_list, coverage, skip_region,
                                                                        device, batch, settings)
            break
        except CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled, everything else re-raised
            if not is_out_of_memory(exc):
                raise
            batch, device = _after_out_of_memory(exc, batch, device, roi, channels.shape[0], notes)
    probability = (prob_sum[0, 0] / len(flip_list)).numpy().astype(np.float32, copy=False)
    if skipped_total:
        log.debug("skipped %d of %d windows outside the breast region", skipped_total, settings.total_windows)
    return WindowPrediction(
        probability=probability,
        act_score=_act_score(all_acts),
        window_act=[a for a, _ in first_acts],
        n_windows=n_windows,
        n_passes=len(flip_list),
        device=device,
        sw_batch_size=batch,
        notes=notes,
        skipped_windows=skipped_total,
    )


def _checked_input(channels: np.ndarray, roi_size_zyx: Sequence[int],
                   breast_mask: np.ndarray | None) -> tuple[np.ndarray, tuple[int, int, int]]:
    """``(channels as an array, window as 3 ints)``; InputError naming what is wrong."""
    channels = np.asarray(channels)
    if channels.ndim != 4:
        raise InputError(f"model input must have shape (C, z, y, x), got {channels.shape}")
    roi = tuple(int(r) for r in roi_size_zyx)
    if len(roi) != 3 or any(r < 1 for r in roi):
        raise InputError(f"window size must be 3 positive voxel counts (z, y, x), got {roi_size_zyx}")
    if breast_mask is not None and tuple(breast_mask.shape) != tuple(channels.shape[1:]):
        raise InputError(f"breast mask shape {breast_mask.shape} differs from the model input {channels.shape[1:]}")
    return channels, roi  # type: ignore[return-value]


@dataclass
class _PassSettings:
    """The sliding-window settings shared by every pass (window, blending, progress over all passes)."""

    roi: tuple[int, int, int]
    overlap: float
    blend_mode: str
    sigma_scale: float
    amp: bool
    total_windows: int
    progress: Callable[[float, str], None] | None
    cancel: CancelToken | None


def _all_passes(model: torch.nn.Module, x_cpu: torch.Tensor, flip_list: list[tuple[int, ...]],
                coverage: np.ndarray | None, skip_region: np.ndarray | None, device: torch.device, batch: int,
                s: _PassSettings) -> tuple[torch.Tensor, list, list, int]:
    """The un-flipped pass and one per test-time flip on ``device``, probabilities summed.

    Returns:
        ``(probability sum (1, 1, z, y, x) on CPU, ACT values of the first pass, of all passes, windows skipped)``.
    """
    model.to(device)
    x = x_cpu.to(device)
    prob_sum: torch.Tensor | None = None
    skipped_total = 0
    first_acts: list[tuple[float, float]] = []
    all_acts: list[tuple[float, float]] = []
    done = [0]

    def on_window(n: int) -> None:
        done[0] += n
        if s.progress is not None:
            s.progress(min(1.0, done[0] / s.total_windows), f"window {done[0]}/{s.total_windows}")

    for pass_index, flip in enumerate(flip_list):
        dims = [a + 2 for a in flip]
        xin = torch.flip(x, dims) if dims else x
        cov = None if coverage is None else (np.flip(coverage, axis=tuple(flip)) if flip else coverage)
        skip = None if skip_region is None else (np.flip(skip_region, axis=tuple(flip)) if flip else skip_region)
        with torch_threads(_torch_threads_while_blending(model, device)):
            prob, acts, skipped = _one_pass(model, xin, s.roi, batch, s.overlap, s.blend_mode, s.sigma_scale, device,
                                            s.amp, cov, skip, on_window, s.cancel)
        skipped_total += skipped
        prob = torch.flip(prob, dims) if dims else prob
        prob_sum = prob if prob_sum is None else prob_sum + prob
        all_acts.extend(acts)
        if pass_index == 0:
            first_acts = acts
        del xin
    assert prob_sum is not None  # flip_list is never empty
    return prob_sum, first_acts, all_acts, skipped_total


def _after_out_of_memory(exc: BaseException, batch: int, device: torch.device, roi: tuple[int, int, int],
                         n_channels: int, notes: list[str]) -> tuple[int, torch.device]:
    """Halve the batch, or at one window move from the GPU to the CPU; the note is logged and kept.

    Raises:
        MemoryError: out of memory on the CPU with one window.
    """
    free_device_memory(device)
    if batch > 1:
        batch = max(1, batch // 2)
        note = f"out of memory on {device}: retrying with sw_batch_size={batch}"
    elif device.type == "cuda":
        device = torch.device("cpu")
        note = "out of memory on the GPU even with one window per batch: falling back to the CPU"
    else:
        raise MemoryError(f"out of memory on the CPU with one window of {roi} voxels and {n_channels} channels") from exc
    log.warning("%s", note)
    notes.append(note)
    return batch, device


def _torch_threads_while_blending(model: torch.nn.Module, device: torch.device) -> int | None:
    """PyTorch threads for the sliding window's own (small) tensor ops: 1 when the network runs on CPU in
    another runtime's thread pool (``runs_on_torch_threads`` is ``False``), else ``None`` (unchanged).

    PyTorch's OpenMP workers spin after every op; between windows they would compete with the runtime's
    threads for the same cores (Duke exam, 2 cores, OpenVINO: inference 3.7 s -> 2.1 s with one thread in one
    session; no clear difference later on a slower machine state: ``bench_segment.py --blending-threads-ab``).
    """
    if device.type == "cpu" and not getattr(model, "runs_on_torch_threads", True):
        return 1
    return None


def _act_score(acts: list[tuple[float, float]]) -> float | None:
    """Max ACT probability over windows covering the breast (all windows when none does)."""
    if not acts:
        return None
    inside = [a for a, frac in acts if frac >= ACT_MIN_BREAST_FRACTION]
    values = inside if inside else [a for a, _ in acts]
    score = float(max(values))
    return score if math.isfinite(score) else None
