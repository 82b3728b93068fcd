"""Contrastive and metric-learning losses: pure functions of tensors plus thin ``nn.Module`` wrappers.

Shared vocabulary: ``distance`` (:data:`~mmssl.losses.distances.DISTANCES`), ``reduction``
(``"mean" | "sum" | "none"`` over the valid terms), ``margin``, ``temperature``; labelled losses
take ``(embeddings (B, D), labels (B,))``, paired ones ``(first (B, D), second (B, D))``.
Terms that do not exist (a batch of 1, no positive, no negative) give 0 with a zero gradient.
Cross-process gathers live in :mod:`mmssl.distributed`.
"""

from mmssl.losses.contrastive import ContrastiveLoss, contrastive_loss, contrastive_loss_from_pairs
from mmssl.losses.distances import DISTANCES, paired_distances, pairwise_distances
from mmssl.losses.infonce import (
    InfoNCELoss,
    NegativeQueue,
    NTXentLoss,
    SymmetricInfoNCELoss,
    info_nce_loss,
    nt_xent_loss,
    symmetric_info_nce_loss,
)
from mmssl.losses.lifted import (
    GeneralizedLiftedStructureLoss,
    LiftedStructureLoss,
    generalized_lifted_structure_loss,
    lifted_structure_loss,
)
from mmssl.losses.nce import NCELoss, nce_loss
from mmssl.losses.npair import NPairLoss, npair_loss
from mmssl.losses.reduction import REDUCTIONS
from mmssl.losses.registry import LOSSES, build_loss
from mmssl.losses.snn import SoftNearestNeighbourLoss, soft_nearest_neighbour_loss
from mmssl.losses.triplet import (
    TRIPLET_MINERS,
    TripletMarginLoss,
    mine_triplets,
    triplet_margin_loss,
    triplet_margin_loss_from_triplets,
)

__all__ = [
    "DISTANCES",
    "LOSSES",
    "REDUCTIONS",
    "TRIPLET_MINERS",
    "ContrastiveLoss",
    "GeneralizedLiftedStructureLoss",
    "InfoNCELoss",
    "LiftedStructureLoss",
    "NCELoss",
    "NPairLoss",
    "NTXentLoss",
    "NegativeQueue",
    "SoftNearestNeighbourLoss",
    "SymmetricInfoNCELoss",
    "TripletMarginLoss",
    "build_loss",
    "contrastive_loss",
    "contrastive_loss_from_pairs",
    "generalized_lifted_structure_loss",
    "info_nce_loss",
    "lifted_structure_loss",
    "mine_triplets",
    "nce_loss",
    "npair_loss",
    "nt_xent_loss",
    "paired_distances",
    "pairwise_distances",
    "soft_nearest_neighbour_loss",
    "symmetric_info_nce_loss",
    "triplet_margin_loss",
    "triplet_margin_loss_from_triplets",
]
