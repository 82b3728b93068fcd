"""Which pairs of a labelled batch are positive and which negative (masks computed once per call)."""

from __future__ import annotations

import torch


def label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive and negative pair masks of a labelled batch.

    Args:
        labels: (B,) class labels.

    Returns:
        ``(positive, negative)``, both (B, B) bool. ``positive[i, j]``: same label and ``i != j``;
        ``negative[i, j]``: different labels. Every ordered pair is counted (both ``(i, j)`` and
        ``(j, i)``), as in pytorch-metric-learning.
    """
    same = labels[:, None] == labels[None, :]  # (B, B)
    negative = ~same
    return same.fill_diagonal_(False), negative


def lowest(dtype: torch.dtype) -> float:
    """Most negative finite value of ``dtype``: fills masked logits so no row is all -inf (NaN grads)."""
    return torch.finfo(dtype).min


def masked_logsumexp(values: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``log sum exp`` over the entries where ``mask`` is true.

    Rows with no true entry return a huge negative finite number (not -inf), and masked entries get
    exactly zero gradient, so callers can drop such rows without NaN leaking into the backward pass.

    Args:
        values: (..., N) tensor.
        mask: bool tensor broadcastable to ``values``.
        dim: reduced dimension.

    Returns:
        ``values`` reduced over ``dim``.
    """
    return torch.logsumexp(values.masked_fill(~mask, lowest(values.dtype)), dim=dim)
