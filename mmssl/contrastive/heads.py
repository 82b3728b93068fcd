"""Projection heads shared by the contrastive methods (SimCLR's g(.), CMC's per-view heads)."""

from __future__ import annotations

from torch import nn


def projection_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Module:
    """SimCLR's head: ``Linear -> BatchNorm -> ReLU -> Linear`` (hidden_dim > 0), else one ``Linear``.

    The loss is computed on the head's output, and the tower's features (before the head) are what
    is exported: Chen et al. (2020, section 4.2) found them better for downstream tasks.
    """
    if hidden_dim <= 0:
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(hidden_dim, out_dim))
