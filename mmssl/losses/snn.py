"""Soft nearest neighbour loss (Frosst, Papernot & Hinton 2019; Salakhutdinov & Hinton 2007).

Per anchor ``i`` with temperature ``T``::

    loss_i = -log( sum_{j != i, y_j = y_i} exp(-d_ij / T) / sum_{k != i} exp(-d_ik / T) )

``d`` is the squared Euclidean distance as in the paper (any key of ``DISTANCES`` works).
Computed as a difference of two log-sum-exps, so it stays finite when every ``exp`` underflows.
Anchors without a same-label partner are left out of the mean (their ratio is 0, the log -inf);
a batch with none gives 0 with zero gradient. One class gives exactly 0 (the ratio is 1).
There is no pytorch-metric-learning peer. Memory: O(B^2); measured peak of forward+backward at
B=1024, D=128, float32: 26 MiB (``bench/losses.py``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mmssl.losses.checks import check_embeddings, check_labels, check_positive
from mmssl.losses.distances import pairwise_distances
from mmssl.losses.pairs import label_masks, masked_logsumexp
from mmssl.losses.reduction import reduce_losses


def soft_nearest_neighbour_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    temperature: float | torch.Tensor = 1.0,
    distance: str = "squared_euclidean",
    reduction: str = "mean",
) -> torch.Tensor:
    """Soft nearest neighbour loss of a labelled batch.

    Args:
        embeddings: (B, D) embeddings.
        labels: (B,) class labels.
        temperature: ``T`` (float or scalar tensor, may be learnable).
        distance: key of :data:`mmssl.losses.distances.DISTANCES`.
        reduction: ``"mean"`` / ``"sum"`` over anchors with a same-label partner, or ``"none"``.

    Returns:
        Scalar loss.
    """
    check_embeddings("embeddings", embeddings)
    check_labels(labels, embeddings)
    check_positive("temperature", temperature)
    positive, negative = label_masks(labels)  # (B, B)
    logits = -pairwise_distances(embeddings, distance=distance) / temperature  # (B, B)
    same_label_lse = masked_logsumexp(logits, positive, dim=1)  # (B,)
    all_other_lse = masked_logsumexp(logits, positive | negative, dim=1)  # (B,)
    return reduce_losses(all_other_lse - same_label_lse, positive.any(dim=1), reduction)


class SoftNearestNeighbourLoss(nn.Module):
    """Module form of :func:`soft_nearest_neighbour_loss`, optionally learning ``log T``.

    Args:
        temperature: initial ``T``.
        learnable: learn ``log T`` (Frosst et al. optimise T) or keep it fixed.
        distance, reduction: as in :func:`soft_nearest_neighbour_loss`.
    """

    input_kind = "labelled"

    def __init__(
        self,
        temperature: float = 1.0,
        learnable: bool = False,
        distance: str = "squared_euclidean",
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        log_temperature = torch.tensor(math.log(temperature))
        if learnable:
            self.log_temperature = nn.Parameter(log_temperature)
        else:
            self.register_buffer("log_temperature", log_temperature)
        self.distance, self.reduction = distance, reduction

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return soft_nearest_neighbour_loss(
            embeddings, labels, self.log_temperature.exp(), self.distance, self.reduction
        )
