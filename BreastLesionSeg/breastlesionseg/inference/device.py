"""Compute-device selection, mixed precision and out-of-memory detection."""
from __future__ import annotations

import contextlib
import logging
import re
from typing import Iterator

import torch

from ..errors import InputError

log = logging.getLogger(__name__)

_CUDA_RE = re.compile(r"^cuda(?::(\d+))?$")


def resolve_device(spec: str | torch.device) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a usable :class:`torch.device`.

    ``"auto"`` picks CUDA device 0 when available, else the CPU.

    Raises:
        InputError: the spec is malformed or names a CUDA device that is not available.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = _CUDA_RE.match(text)
    if not match:
        raise InputError(f"--device '{spec}' is not one of auto, cpu, cuda, cuda:N")
    if not torch.cuda.is_available():
        raise InputError(f"--device '{spec}': no CUDA GPU is available on this machine (use --device cpu or auto)")
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise InputError(f"--device '{spec}': only {count} CUDA device(s) present (cuda:0..cuda:{count - 1})")
    return torch.device(f"cuda:{index}")


def describe_device(device: torch.device) -> str:
    """Human-readable device name, e.g. ``"cpu (2 threads)"`` or ``"cuda:0 (NVIDIA H100 80GB HBM3)"``."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def autocast_context(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """float16 autocast on CUDA when ``enabled``; a no-op context on CPU (float32 there)."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def is_out_of_memory(exc: BaseException) -> bool:
    """True when ``exc`` is a CUDA/CPU allocator out-of-memory error."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op CPU thread count (``None`` leaves it alone)."""
    if num_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def free_device_memory(device: torch.device) -> None:
    """Release cached CUDA blocks after an out-of-memory error (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
