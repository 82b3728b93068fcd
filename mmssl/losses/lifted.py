"""Lifted structured loss (Oh Song et al. 2016) and its generalized form (Hermans et al. 2017).

Lifted structure, for every positive pair ``(i, j)`` with negatives ``N(i)``, ``N(j)``::

    J_ij = log( sum_{k in N(i)} exp(margin - D_ik) + sum_{l in N(j)} exp(margin - D_jl) ) + D_ij
    loss = 1 / (2|P|) * sum_{(i,j) in P} max(0, J_ij)^2

with P the unordered positive pairs. We evaluate it over ordered pairs (``mean`` of
``max(0, J_ij)^2 / 2`` over the 2|P| ordered pairs is the same number), as pml does; the
log-sum-exp of both ends is ``logaddexp(L_i, L_j)`` of per-row sums, so memory is O(B^2), no
(pairs x negatives) matrix.

Generalized lifted structure ("In Defense of the Triplet Loss", eq. 4), per anchor ``a``::

    loss_a = max(0, log sum_{p in P(a)} exp(D_ap) + log sum_{n in N(a)} exp(margin - D_an))

Deliberate difference from ``pytorch_metric_learning.losses.GeneralizedLiftedStructureLoss``:
pml averages over all B anchors and scores an anchor that has no positive as if its positive
term were 0; we average only over anchors that have at least one positive and one negative
(an anchor without a positive has no structure to lift). They agree when every anchor has both
(tested, and the difference is tested too). ``LiftedStructureLoss`` agrees with pml's (with
``LpDistance(normalize_embeddings=False)``, the default ``MeanReducer``).

Memory: both are O(B^2). Measured peak of forward+backward at D=128, float32 (``bench/losses.py``):
lifted 2.5 MiB at B=256 (pml: 1041 MiB, it builds a positive-pairs x negative-pairs matrix) and
40 MiB at B=1024 (pml would need ~72 GiB); generalized 30 MiB at B=1024 (pml: 51 MiB).
"""

from __future__ import annotations

import torch
from torch import nn

from mmssl.losses.checks import check_embeddings, check_labels, check_positive
from mmssl.losses.distances import pairwise_distances
from mmssl.losses.pairs import label_masks, masked_logsumexp
from mmssl.losses.reduction import reduce_losses


def lifted_structure_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 1.0,
    distance: str = "euclidean",
    reduction: str = "mean",
) -> torch.Tensor:
    """Lifted structured loss (Oh Song et al. 2016, eq. 4) over a labelled batch.

    Args:
        embeddings: (B, D) embeddings.
        labels: (B,) class labels.
        margin: ``alpha`` in the paper.
        distance: key of :data:`mmssl.losses.distances.DISTANCES`.
        reduction: ``"mean"`` over ordered positive pairs, ``"sum"``, or ``"none"`` (one value per
            ordered positive pair, row-major).

    Returns:
        Scalar loss; 0 with zero gradient when the batch has no positive pair or no negative.
    """
    check_embeddings("embeddings", embeddings)
    check_labels(labels, embeddings)
    check_positive("margin", margin, allow_zero=True)
    positive, negative = label_masks(labels)  # (B, B)
    distances = pairwise_distances(embeddings, distance=distance)  # (B, B)
    negative_lse = masked_logsumexp(margin - distances, negative, dim=1)  # (B,) L_i
    both_ends = torch.logaddexp(negative_lse[:, None], negative_lse[None, :])  # (B, B)
    losses = (both_ends + distances).clamp_min(0.0).pow(2) / 2  # (B, B)
    has_negative = negative.any(dim=1)  # (B,)
    valid = positive & (has_negative[:, None] | has_negative[None, :])
    return reduce_losses(losses, valid, reduction)


def generalized_lifted_structure_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 1.0,
    distance: str = "euclidean",
    reduction: str = "mean",
) -> torch.Tensor:
    """Generalized lifted structure loss (Hermans et al. 2017), one term per anchor.

    Args:
        embeddings: (B, D) embeddings.
        labels: (B,) class labels.
        margin: added to the negative side.
        distance: key of :data:`mmssl.losses.distances.DISTANCES`.
        reduction: ``"mean"`` over anchors with a positive and a negative, ``"sum"``, or ``"none"``.

    Returns:
        Scalar loss; 0 with zero gradient when no anchor has both a positive and a negative.
    """
    check_embeddings("embeddings", embeddings)
    check_labels(labels, embeddings)
    check_positive("margin", margin, allow_zero=True)
    positive, negative = label_masks(labels)  # (B, B)
    distances = pairwise_distances(embeddings, distance=distance)  # (B, B)
    positive_lse = masked_logsumexp(distances, positive, dim=1)  # (B,)
    negative_lse = masked_logsumexp(margin - distances, negative, dim=1)  # (B,)
    losses = (positive_lse + negative_lse).clamp_min(0.0)  # (B,)
    return reduce_losses(losses, positive.any(dim=1) & negative.any(dim=1), reduction)


class LiftedStructureLoss(nn.Module):
    """Module form of :func:`lifted_structure_loss`; ``forward(embeddings (B, D), labels (B,))``."""

    input_kind = "labelled"

    def __init__(self, margin: float = 1.0, distance: str = "euclidean", reduction: str = "mean") -> None:
        super().__init__()
        self.margin, self.distance, self.reduction = margin, distance, reduction

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return lifted_structure_loss(embeddings, labels, self.margin, self.distance, self.reduction)


class GeneralizedLiftedStructureLoss(nn.Module):
    """Module form of :func:`generalized_lifted_structure_loss`."""

    input_kind = "labelled"

    def __init__(self, margin: float = 1.0, distance: str = "euclidean", reduction: str = "mean") -> None:
        super().__init__()
        self.margin, self.distance, self.reduction = margin, distance, reduction

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return generalized_lifted_structure_loss(embeddings, labels, self.margin, self.distance, self.reduction)
