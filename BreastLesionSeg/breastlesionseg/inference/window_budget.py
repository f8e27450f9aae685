"""Choose a sliding-window size that fits a memory budget (graceful degradation on small machines).

The memory one forward pass adds grows linearly with the window's voxels (activations dominate;
weights are < 2 MB). :data:`BYTES_PER_VOXEL` holds the measured peak-RSS increase of one forward
pass per input voxel for each backend (``benchmarks/bench_networks.py``, 2-core EPYC, MM-3DUNet
t=12 + ACT at the paper's input; see docs/performance.md). :func:`fit_window`
shrinks a window (H and W first, then D, in steps of the network's size multiple) until
``voxels * bytes_per_voxel`` fits the budget, and :func:`memory_budget_bytes` proposes a budget from
the memory the system has available.
"""
from __future__ import annotations

import logging
from typing import Sequence, Tuple

from ..errors import InputError
from ..system_memory import available_memory_bytes

log = logging.getLogger(__name__)

#: measured peak RSS increase of one MM-3DUNet forward pass per input voxel, bytes (float32): base width 8,
#: t = 12 + ACT at 1 x 1 x 32 x 256 x 256 (benchmarks/bench_networks.py, 2-core EPYC, docs/performance.md):
#: eager 3153 MB, OpenVINO 1605 MB over 2.10 M voxels.
BYTES_PER_VOXEL: dict[str, float] = {"eager": 1503.0, "openvino": 765.0}
#: fallback when the backend is unknown (the largest measured figure)
DEFAULT_BYTES_PER_VOXEL = max(BYTES_PER_VOXEL.values())
#: windows per forward pass when the user does not choose (``InferenceConfig.sw_batch_size = None``), per
#: device type. CPU: 1 (Duke exam, OpenVINO, 2 cores: batches of 4 and 8 were not faster, 8 slower,
#: docs/performance.md). CUDA: 16 windows of the demo model's 16 x 32 x 32 are ~0.5 M voxels per pass;
#: one window per pass would leave the GPU launch-bound (not yet measured: no GPU was available).
AUTO_SW_BATCH_SIZE: dict[str, int] = {"cpu": 1, "cuda": 16}


def batch_for_memory(window_zyx: Sequence[int], device_type: str, backend: str, max_batch: int,
                     budget_bytes: int | None = None, cuda_device=None) -> int:
    """The largest batch ``<= max_batch`` (halving from it) whose forward pass fits the memory budget; at least 1.

    Args:
        window_zyx: the sliding window (z, y, x) in voxels.
        device_type: ``"cpu"`` or ``"cuda"``.
        backend: inference backend name (its :data:`BYTES_PER_VOXEL`; unknown -> the largest).
        max_batch: the batch wanted.
        budget_bytes: memory one forward pass may take; default as in :func:`window_for_memory`.
        cuda_device: the CUDA device for the default GPU budget.
    """
    if int(max_batch) < 1:
        raise InputError(f"max_batch must be >= 1; got {max_batch}")
    if budget_bytes is None:
        budget_bytes = cuda_memory_budget_bytes(cuda_device) if device_type == "cuda" else memory_budget_bytes()
    voxels = 1
    for s in window_zyx:
        voxels *= int(s)
    per_window = voxels * BYTES_PER_VOXEL.get(backend, DEFAULT_BYTES_PER_VOXEL)
    batch = int(max_batch)
    while batch > 1 and batch * per_window > budget_bytes:
        batch //= 2
    return batch


def memory_budget_bytes(fraction: float = 0.5, cap_bytes: int = 4 * 2**30) -> int:
    """A budget for one forward pass: ``fraction`` of ``MemAvailable`` (Linux), at most ``cap_bytes``.

    Args:
        fraction: share of the currently available memory to use, in (0, 1].
        cap_bytes: upper bound (default 4 GiB, the CPU target of the Duke exam).

    Returns:
        Bytes; ``cap_bytes * fraction`` when ``/proc/meminfo`` cannot be read.
    """
    if not (0.0 < fraction <= 1.0):
        raise InputError(f"fraction must be in (0, 1]; got {fraction}")
    if cap_bytes <= 0:
        raise InputError(f"cap_bytes must be positive; got {cap_bytes}")
    available = available_memory_bytes()
    return int((cap_bytes if available is None else min(cap_bytes, available)) * fraction)


def fit_window(patch_size_zyx: Sequence[int], budget_bytes: int, bytes_per_voxel: float = DEFAULT_BYTES_PER_VOXEL,
               multiple: int = 8, min_size: int | None = None) -> Tuple[int, int, int]:
    """The largest window no larger than ``patch_size_zyx`` whose forward pass fits ``budget_bytes``.

    Shrinks the largest of (y, x) by ``multiple`` voxels at a time (keeping windows as square as the
    patch), then z, never below ``min_size`` (default ``2 * multiple``) per axis.

    Args:
        patch_size_zyx: the model card's window (z, y, x) in voxels.
        budget_bytes: memory the forward pass may add, bytes.
        bytes_per_voxel: peak bytes per input voxel of the backend (see :data:`BYTES_PER_VOXEL`).
        multiple: step (the network's size multiple, 2 ** (levels - 1)).
        min_size: smallest size per axis.

    Returns:
        ``(z, y, x)``; the patch itself when it fits.

    Raises:
        InputError: bad arguments, or even the smallest window does not fit (the message says how much it needs).
    """
    patch = [int(s) for s in patch_size_zyx]
    if len(patch) != 3 or any(s < 1 for s in patch):
        raise InputError(f"patch_size_zyx must be 3 positive integers; got {tuple(patch_size_zyx)}")
    if budget_bytes <= 0 or bytes_per_voxel <= 0 or multiple < 1:
        raise InputError(f"budget_bytes ({budget_bytes}), bytes_per_voxel ({bytes_per_voxel}) and multiple "
                         f"({multiple}) must be positive")
    floor = int(min_size if min_size is not None else 2 * multiple)
    win = list(patch)

    def need(w: Sequence[int]) -> float:
        return w[0] * w[1] * w[2] * bytes_per_voxel

    while need(win) > budget_bytes:
        axis = 1 if win[1] >= win[2] else 2
        if win[axis] - multiple >= floor:
            win[axis] -= multiple
        elif win[3 - axis] - multiple >= floor:
            win[3 - axis] -= multiple
        elif win[0] - multiple >= floor:
            win[0] -= multiple
        else:
            raise InputError(
                f"no window fits the memory budget of {budget_bytes / 2**20:.0f} MiB: the smallest, {tuple(win)}, "
                f"needs about {need(win) / 2**20:.0f} MiB"
            )
    if win != patch:
        log.warning("window reduced from %s to %s to fit %.0f MiB", tuple(patch), tuple(win), budget_bytes / 2**20)
    return (win[0], win[1], win[2])


def cuda_memory_budget_bytes(device, fraction: float = 0.5) -> int:
    """``fraction`` of the free memory of CUDA ``device`` (``torch.cuda.mem_get_info``)."""
    import torch  # noqa: PLC0415 - inference.window_budget is importable without torch

    if not (0.0 < fraction <= 1.0):
        raise InputError(f"fraction must be in (0, 1]; got {fraction}")
    free, _total = torch.cuda.mem_get_info(device)
    return int(free * fraction)


def window_for_memory(window_zyx: Sequence[int], device_type: str, backend: str, batch: int = 1,
                      multiple: int = 8, budget_bytes: int | None = None,
                      cuda_device=None) -> Tuple[Tuple[int, int, int], str | None]:
    """The sliding window to use on this machine: the model's, or a smaller one when it does not fit.

    Args:
        window_zyx: the model's window (z, y, x) in voxels.
        device_type: ``"cpu"`` or ``"cuda"``.
        backend: inference backend name (its measured :data:`BYTES_PER_VOXEL`; unknown -> the largest).
        batch: windows per forward pass (memory grows with it).
        multiple: the network's size multiple.
        budget_bytes: memory one forward pass may take; default :func:`memory_budget_bytes` on CPU,
            :func:`cuda_memory_budget_bytes` on CUDA.
        cuda_device: the CUDA device for the default GPU budget.

    Returns:
        ``(window, note)``; ``note`` is ``None`` when the model's window fits, else a sentence for the
        user saying what was reduced and why.

    Raises:
        InputError: not even the smallest window fits (see :func:`fit_window`).
    """
    window = tuple(int(s) for s in window_zyx)
    if budget_bytes is None:
        budget_bytes = cuda_memory_budget_bytes(cuda_device) if device_type == "cuda" else memory_budget_bytes()
    per_voxel = BYTES_PER_VOXEL.get(backend, DEFAULT_BYTES_PER_VOXEL) * max(1, int(batch))
    fitted = fit_window(window, budget_bytes, per_voxel, multiple=multiple, min_size=min(multiple, *window))
    if fitted == window:
        return window, None
    note = (f"sliding window reduced from {window} to {fitted} voxels to fit the {budget_bytes / 2**30:.2f} GiB "
            f"memory budget on {device_type} ({backend} backend); the model was trained on {window}, so the "
            f"results may differ slightly from a machine with more memory")
    return fitted, note
