"""The one place that knows about torch.distributed: world info and gathers across processes.

Every helper is a no-op on a single process (``torch.distributed`` not initialised, or a world of
one), so code calls them unconditionally and losses never take ``rank``/``world_size`` arguments.

Gradient convention of :func:`all_gather_with_grad` (the same as ``torch.distributed.nn``):
its backward *sums* the gradients every rank computed for a rank's slice. If every rank computes
the same global-batch loss, each rank's local inputs therefore receive ``world_size`` times the
gradient of that loss; ``DistributedDataParallel`` averages parameter gradients over ranks, which
divides it back, so parameter gradients equal one process training on the concatenated batch.

Set-up helpers for ``torchrun`` runs also live here: :func:`init_distributed` (gloo on CPU, NCCL on
CUDA), :func:`main_process_first` (rank 0 fills a cache, the others then read it),
:func:`broadcast_parameters` and :func:`average_gradients` (what DistributedDataParallel does, for
code paths such as :mod:`mmssl.train.gradcache` that run several backward passes per step).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class WorldInfo:
    """Position of this process: ``rank`` in ``[0, world_size)``."""

    rank: int = 0
    world_size: int = 1


def world_info() -> WorldInfo:
    """Rank and world size of the default process group; ``WorldInfo(0, 1)`` when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return WorldInfo(dist.get_rank(), dist.get_world_size())
    return WorldInfo()


def is_distributed() -> bool:
    """True when more than one process takes part."""
    return world_info().world_size > 1


def launched_world_size() -> int:
    """``WORLD_SIZE`` set by torchrun (1 when launched as a plain process)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: torch.device, timeout_minutes: float = 30.0) -> WorldInfo:
    """Join torchrun's process group (once): NCCL for a CUDA device, gloo otherwise.

    A no-op returning ``WorldInfo(0, 1)`` when not launched by torchrun (``WORLD_SIZE`` unset or 1).
    torchrun provides ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` (or the rendezvous),
    so the same script runs on one process, ``--nproc_per_node N`` or several nodes unchanged.
    """
    if launched_world_size() <= 1 or not dist.is_available():
        return world_info()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return world_info()


def barrier() -> None:
    """Wait for every rank (no-op on one process)."""
    if is_distributed():
        dist.barrier()


@contextlib.contextmanager
def main_process_first() -> Iterator[bool]:
    """Run the body on rank 0 first, then on each other node's first process, then on the rest.

    For work whose result lands on disk (a feature cache): rank 0 computes and writes it while the
    others wait; then the first process of every other node runs it (finding the files on a shared
    disk, or computing them on its node-local disk), then every other process, which finds them
    written. No two processes write the same files at once. Yields ``rank == 0``.
    """
    world = world_info()
    local_rank = int(os.environ.get("LOCAL_RANK", world.rank))
    turn = 0 if world.rank == 0 else 1 if local_rank == 0 else 2
    for _ in range(turn):  # every rank passes exactly two barriers
        barrier()
    try:
        yield world.rank == 0
    finally:
        for _ in range(2 - turn):
            barrier()


def broadcast_object(obj, source_rank: int = 0):
    """``obj`` of rank ``source_rank`` on every rank (pickled); ``obj`` itself on one process.

    For results that must be identical on every rank but are not reproducible across processes,
    e.g. a WordPiece vocabulary (HF tokenizers breaks frequency ties differently in each process).
    """
    if not is_distributed():
        return obj
    box = [obj if world_info().rank == source_rank else None]
    dist.broadcast_object_list(box, src=source_rank)
    return box[0]


@torch.no_grad()
def broadcast_parameters(module: torch.nn.Module, source_rank: int = 0) -> None:
    """Copy rank ``source_rank``'s parameters and buffers to every rank (as DDP does when it wraps)."""
    if not is_distributed():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=source_rank)


@torch.no_grad()
def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Average ``.grad`` over ranks in place (DDP's all-reduce), flattened into one buffer per dtype.

    Every rank must pass the same parameters in the same order; a parameter without a gradient on
    this rank counts as zero (and gets one), so ranks that skipped a branch still agree.
    """
    world = world_info()
    if world.world_size == 1:
        return
    params = [p for p in parameters if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    by_dtype: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for p in params:
        by_dtype.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
    for grads in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in grads])  # (sum of sizes,)
        dist.all_reduce(flat)
        flat /= world.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()


def _check_same_rows(tensor: torch.Tensor, world_size: int) -> None:
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(world_size)]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    if len({int(size) for size in sizes}) != 1:
        raise ValueError(
            f"all ranks must gather the same batch size, got {[int(s) for s in sizes]}; "
            "use drop_last=True in the DataLoader/DistributedSampler."
        )


def all_gather_with_grad(tensor: torch.Tensor, check_sizes: bool = True) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, keeping the autograd graph.

    Args:
        tensor: (B, ...) this rank's rows; every rank must pass the same shape.
        check_sizes: verify equal batch sizes first (one tiny extra collective).

    Returns:
        (world_size * B, ...) rows of rank 0, then rank 1, ...; ``tensor`` itself when not
        distributed. Gradients flow back to every rank (see the module docstring).
    """
    world = world_info()
    if world.world_size == 1:
        return tensor
    if check_sizes:
        _check_same_rows(tensor, world.world_size)
    return _AllGatherWithGrad.apply(tensor)


class _AllGatherWithGrad(torch.autograd.Function):
    """Forward: concatenate every rank's rows. Backward: each rank gets the sum over ranks of the
    gradients of its rows (reduce-scatter; gloo lacks it, so all-reduce then take our rows)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        ctx.rows, ctx.rank = tensor.shape[0], world_info().rank
        return _gather_rows(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()  # (W*B, ...)
        if dist.get_backend() == dist.Backend.NCCL:
            local = grad.new_empty((ctx.rows, *grad.shape[1:]))
            dist.reduce_scatter_single(local, grad)
            return local
        total = grad.clone()
        dist.all_reduce(total)
        return total[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


@torch.no_grad()
def all_gather_no_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, without gradient (e.g. queue keys).

    Args:
        tensor: (B, ...) this rank's rows; every rank must pass the same shape.

    Returns:
        (world_size * B, ...) detached; ``tensor.detach()`` when not distributed.
    """
    world = world_info()
    if world.world_size == 1:
        return tensor.detach()
    _check_same_rows(tensor, world.world_size)
    return _gather_rows(tensor)


def _gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """(B, ...) on every rank -> (W*B, ...) rows of rank 0, then rank 1, ... (one collective, no autograd)."""
    tensor = tensor.contiguous()
    out = tensor.new_empty((world_info().world_size * tensor.shape[0], *tensor.shape[1:]))  # (W*B, ...)
    dist.all_gather_single(out, tensor)
    return out


def local_row_offset(num_local_rows: int) -> int:
    """Index of this rank's first row in a gathered batch (``rank * num_local_rows``).

    Used by "local loss" variants: local queries score the gathered keys, and the positive of
    local row ``i`` sits at gathered row ``offset + i``.
    """
    return world_info().rank * num_local_rows
