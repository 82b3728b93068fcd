"""Reduction of per-term losses, shared by all losses: ``reduction="mean" | "sum" | "none"``.

Only the *valid* terms (those the mask selects: pairs with a positive, anchors with a negative ...)
are reduced. With no valid term, ``"mean"`` and ``"sum"`` return ``0`` connected to the graph, so
the gradient is zero, never NaN.
"""

from __future__ import annotations

import torch

from mmssl.losses.checks import check_choice

REDUCTIONS = ("mean", "sum", "none")


def reduce_losses(losses: torch.Tensor, valid: torch.Tensor | None, reduction: str) -> torch.Tensor:
    """Reduce the valid entries of ``losses``.

    Args:
        losses: per-term losses of any shape.
        valid: bool mask broadcastable to ``losses``; ``None`` means all terms are valid.
        reduction: ``"mean"`` over valid terms, ``"sum"``, or ``"none"`` (1-D tensor of the valid
            terms in row-major order).

    Returns:
        scalar, or (num_valid,) for ``"none"``.
    """
    check_choice("reduction", reduction, REDUCTIONS)
    if valid is None:
        if reduction == "none":
            return losses.reshape(-1)
        total = losses.sum()
        return total / max(losses.numel(), 1) if reduction == "mean" else total
    valid = valid.expand_as(losses)
    if reduction == "none":
        return losses[valid]
    total = torch.where(valid, losses, torch.zeros_like(losses)).sum()
    if reduction == "sum":
        return total
    return total / valid.sum().clamp_min(1).to(losses.dtype)
