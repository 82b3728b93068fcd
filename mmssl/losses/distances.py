"""Pairwise distances: the one distance vocabulary shared by every distance-based loss.

Losses that compare embeddings by distance (contrastive, triplet, lifted structure, soft nearest
neighbours) take ``distance="euclidean" | "squared_euclidean" | "cosine"`` and look it up in
:data:`DISTANCES`. Similarity-based losses (N-pair, InfoNCE, NT-Xent) use dot products directly.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from mmssl.losses.checks import check_choice

def squared_euclidean_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distance between every row of ``x`` and every row of ``y``.

    Uses ``|x|^2 + |y|^2 - 2 x.y`` (one fused matrix product forward, two backward), clamped at 0.

    Args:
        x: (B, D) embeddings.
        y: (M, D) embeddings.

    Returns:
        (B, M) tensor, ``out[i, j] = ||x_i - y_j||^2``.
    """
    x_norm = x.pow(2).sum(dim=1, keepdim=True)  # (B, 1)
    y_norm = y.pow(2).sum(dim=1).unsqueeze(0)  # (1, M)
    squared = torch.addmm(y_norm, x, y.T, alpha=-2.0).add_(x_norm)  # (B, M)
    return squared.clamp_min(0.0)


def euclidean_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between every row of ``x`` and every row of ``y``.

    The squared distance is clamped at the dtype's smallest normal number before the square root:
    coincident points get a distance of ~1e-19 (float32) with gradient 0, never NaN (the slope of
    ``sqrt`` at 0 is infinite).

    Args:
        x: (B, D) embeddings.
        y: (M, D) embeddings.

    Returns:
        (B, M) tensor, ``out[i, j] = ||x_i - y_j||``.
    """
    x_norm = x.pow(2).sum(dim=1, keepdim=True)  # (B, 1)
    y_norm = y.pow(2).sum(dim=1).unsqueeze(0)  # (1, M)
    squared = torch.addmm(y_norm, x, y.T, alpha=-2.0).add_(x_norm)  # (B, M)
    return squared.clamp_min(torch.finfo(squared.dtype).tiny).sqrt()


def cosine_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cosine distance ``1 - cos(x_i, y_j)``, in [0, 2].

    Args:
        x: (B, D) embeddings.
        y: (M, D) embeddings.

    Returns:
        (B, M) tensor.
    """
    return 1.0 - F.normalize(x, dim=1) @ F.normalize(y, dim=1).T  # (B, M)


DISTANCES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "euclidean": euclidean_distances,
    "squared_euclidean": squared_euclidean_distances,
    "cosine": cosine_distances,
}


def pairwise_distances(
    x: torch.Tensor, y: torch.Tensor | None = None, distance: str = "euclidean"
) -> torch.Tensor:
    """Distance matrix by name from :data:`DISTANCES`.

    Args:
        x: (B, D) embeddings.
        y: (M, D) embeddings; ``None`` means ``x`` (all pairs within the batch).
        distance: a key of :data:`DISTANCES`.

    Returns:
        (B, M) distance matrix.
    """
    check_choice("distance", distance, DISTANCES)
    return DISTANCES[distance](x, x if y is None else y)


def paired_distances(x: torch.Tensor, y: torch.Tensor, distance: str = "euclidean") -> torch.Tensor:
    """Distance between row i of ``x`` and row i of ``y`` only (for explicit pairs/triplets).

    Args:
        x: (P, D) embeddings.
        y: (P, D) embeddings.
        distance: a key of :data:`DISTANCES`.

    Returns:
        (P,) distances.
    """
    check_choice("distance", distance, DISTANCES)
    if distance == "cosine":
        return 1.0 - (F.normalize(x, dim=1) * F.normalize(y, dim=1)).sum(dim=1)  # (P,)
    squared = (x - y).pow(2).sum(dim=1)  # (P,)
    if distance == "squared_euclidean":
        return squared
    return squared.clamp_min(torch.finfo(squared.dtype).tiny).sqrt()  # (P,)
