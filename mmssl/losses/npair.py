"""Multi-class N-pair loss (Sohn 2016, "Improved Deep Metric Learning with Multi-class N-pair Loss").

N pairs ``(a_i, p_i)`` from N different classes; each anchor's positive is ``p_i`` and the other
N-1 positives are its negatives::

    loss_i = log(1 + sum_{j != i} exp(a_i.p_j - a_i.p_i))        # = cross-entropy of row i
           + l2_weight / 2 * (||a_i||^2 + ||p_i||^2)             # Sohn's L2 regulariser

so the ``"mean"`` loss is ``CE + l2_weight * mean over the 2N embeddings of ||f||^2``. This equals
``pytorch_metric_learning.losses.NPairsLoss(distance=DotProductSimilarity(normalize_embeddings=False),
embedding_regularizer=LpRegularizer(power=2), embedding_reg_weight=l2_weight)`` on ``cat([a, p])``
with labels ``cat([arange(N), arange(N)])`` (tested). Deliberate difference: pml's default
similarity L2-normalises the embeddings (which makes the regulariser moot); Sohn's loss uses raw
dot products, so do we — normalise before the call for the cosine form. TensorFlow's ``npairs_loss`` scales the regulariser by ``0.25 * reg_lambda`` per tower
(``= l2_weight / 2`` here); its default ``reg_lambda=0.002`` is our default too.

Batch of 1: the ranking term is exactly 0 (a single logit); only the regulariser remains.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmssl.losses.checks import check_embeddings, check_same_shape
from mmssl.losses.reduction import reduce_losses


def npair_loss(
    anchors: torch.Tensor, positives: torch.Tensor, l2_weight: float = 0.002, reduction: str = "mean"
) -> torch.Tensor:
    """Multi-class N-pair loss with L2 regulariser.

    Args:
        anchors: (N, D) anchors, one per class.
        positives: (N, D) positives, row i has the class of ``anchors[i]``.
        l2_weight: weight of the squared-norm regulariser (0 disables it).
        reduction: ``"mean"`` / ``"sum"`` over the N pairs, or ``"none"`` ((N,)).

    Returns:
        Scalar loss, or (N,) for ``reduction="none"``.
    """
    check_embeddings("anchors", anchors)
    check_embeddings("positives", positives)
    check_same_shape("anchors", anchors, "positives", positives)
    logits = anchors @ positives.T  # (N, N), row i: a_i against every positive
    targets = torch.arange(anchors.shape[0], device=anchors.device)
    losses = F.cross_entropy(logits, targets, reduction="none")  # (N,)
    if l2_weight:
        losses = losses + 0.5 * l2_weight * (anchors.pow(2).sum(dim=1) + positives.pow(2).sum(dim=1))
    return reduce_losses(losses, None, reduction)


class NPairLoss(nn.Module):
    """Module form of :func:`npair_loss`; ``forward(anchors (N, D), positives (N, D))``."""

    input_kind = "paired"

    def __init__(self, l2_weight: float = 0.002, reduction: str = "mean") -> None:
        super().__init__()
        self.l2_weight, self.reduction = l2_weight, reduction

    def forward(self, anchors: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        return npair_loss(anchors, positives, self.l2_weight, self.reduction)
