"""torch.distributed helpers: one code path for a single process and for ``torchrun`` (DDP).

Under ``torchrun`` the environment holds ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous
address; :func:`init_distributed` then joins the process group (NCCL on CUDA, gloo on CPU). Rank 0
alone writes files and prints progress; metrics are averaged over ranks with :func:`all_reduce_sum`.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)


@dataclass
class DistContext:
    """Where this process stands in the job.

    Attributes:
        rank: global rank (0 when not distributed).
        world_size: number of processes (1 when not distributed).
        local_rank: rank on this node (selects the CUDA device).
        backend: ``"gloo"``/``"nccl"`` or ``""`` when not distributed.
        owns_group: True when :func:`init_distributed` created the process group (and must destroy it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        """True with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that writes files and reports progress)."""
        return self.rank == 0


def launched_as_main_rank() -> bool:
    """True unless ``torchrun`` started this process as a rank other than 0 (read before joining the group).

    Used for work that exactly one process of a job must do before the process group exists, such as
    claiming the output folder.
    """
    return os.environ.get("RANK", "0").strip() in ("", "0")


def init_distributed(use_cuda: bool) -> DistContext:
    """Join the process group described by the environment (``torchrun``), or run single-process.

    Args:
        use_cuda: training on CUDA (then the backend is NCCL and the device is ``cuda:LOCAL_RANK``).

    Returns:
        The :class:`DistContext`.
    """
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                           dist.get_backend(), owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return DistContext()
    backend = "nccl" if use_cuda else "gloo"
    dist.init_process_group(backend=backend)
    ctx = DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), backend, True)
    log.info("joined process group: rank %d of %d (%s)", ctx.rank, ctx.world_size, backend)
    return ctx


def cleanup(ctx: DistContext) -> None:
    """Leave the process group if :func:`init_distributed` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op single-process)."""
    if ctx.distributed:
        dist.barrier()


def all_reduce_sum(values: list[float], ctx: DistContext, device: torch.device) -> list[float]:
    """Sum a list of floats over ranks (returns them unchanged single-process)."""
    if not ctx.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.cpu()]


def broadcast_flag(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any rank (e.g. "stop now")."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


class AuxForward(nn.Module):
    """Wraps a network so that ``forward`` returns ``(seg_logits, act_logits | None)``.

    DDP synchronises gradients only through ``forward``; wrapping ``forward_with_aux`` keeps the
    ACT head inside the synchronised graph.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor):  # noqa: D102
        return self.network.forward_with_aux(x)


def wrap_for_training(network: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``AuxForward(network)``, inside ``DistributedDataParallel`` when distributed."""
    module = AuxForward(network)
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        module = DistributedDataParallel(module, device_ids=ids)
    return module


def max_weight_difference(network: nn.Module, ctx: DistContext, device: torch.device) -> float:
    """Largest absolute difference between this rank's parameters and rank 0's (0.0 single-process).

    DDP keeps replicas identical by construction; this check proves it after training (reported
    in the training report) and catches a replica that drifted (e.g. a parameter outside DDP).
    """
    if not ctx.distributed:
        return 0.0
    worst = torch.zeros(1, dtype=torch.float64, device=device)
    for p in network.parameters():
        ref = p.detach().clone()
        dist.broadcast(ref, src=0)
        worst = torch.maximum(worst, (p.detach() - ref).abs().max().to(torch.float64).reshape(1))
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    return float(worst.item())
