"""The one place that knows about torch.distributed: world info and gathers across processes.

Every helper is a no-op on a single process (``torch.distributed`` not initialised, or a world of
one), so code calls them unconditionally and losses never take ``rank``/``world_size`` arguments.

Gradient convention of :func:`all_gather_with_grad` (the same as ``torch.distributed.nn``):
its backward *sums* the gradients every rank computed for a rank's slice. If every rank computes
the same global-batch loss, each rank's local inputs therefore receive ``world_size`` times the
gradient of that loss; ``DistributedDataParallel`` averages parameter gradients over ranks, which
divides it back, so parameter gradients equal one process training on the concatenated batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_functional


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
    return torch.cat(dist_functional.all_gather(tensor), dim=0)


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
    gathered = [torch.empty_like(tensor) for _ in range(world.world_size)]
    dist.all_gather(gathered, tensor.contiguous())
    return torch.cat(gathered, dim=0)


def local_row_offset(num_local_rows: int) -> int:
    """Index of this rank's first row in a gathered batch (``rank * num_local_rows``).

    Used by "local loss" variants: local queries score the gathered keys, and the positive of
    local row ``i`` sits at gathered row ``offset + i``.
    """
    return world_info().rank * num_local_rows
