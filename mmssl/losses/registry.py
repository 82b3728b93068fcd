"""Registry of loss modules by name: the trainer builds losses from config through it, and one
parametrised contract test runs every entry.

Each class declares ``input_kind``, which says what ``forward`` takes:
  * ``"labelled"``: ``forward(embeddings (B, D), labels (B,))``;
  * ``"paired"``: ``forward(first (B, D), second (B, D))``, row i of each is a positive pair;
  * ``"noise"``: ``forward(data_scores (B,), noise_scores (B, K), data_indices, noise_indices)``.
"""

from __future__ import annotations

from torch import nn

from mmssl.losses.checks import check_choice
from mmssl.losses.contrastive import ContrastiveLoss
from mmssl.losses.infonce import InfoNCELoss, NTXentLoss, SymmetricInfoNCELoss
from mmssl.losses.lifted import GeneralizedLiftedStructureLoss, LiftedStructureLoss
from mmssl.losses.nce import NCELoss
from mmssl.losses.npair import NPairLoss
from mmssl.losses.snn import SoftNearestNeighbourLoss
from mmssl.losses.triplet import TripletMarginLoss

LOSSES: dict[str, type[nn.Module]] = {
    "contrastive": ContrastiveLoss,
    "triplet": TripletMarginLoss,
    "npair": NPairLoss,
    "lifted_structure": LiftedStructureLoss,
    "generalized_lifted_structure": GeneralizedLiftedStructureLoss,
    "nce": NCELoss,
    "info_nce": InfoNCELoss,
    "symmetric_info_nce": SymmetricInfoNCELoss,
    "nt_xent": NTXentLoss,
    "soft_nearest_neighbour": SoftNearestNeighbourLoss,
}


def build_loss(name: str, **kwargs) -> nn.Module:
    """Instantiate ``LOSSES[name](**kwargs)``; a clear ``ValueError`` for an unknown name."""
    check_choice("loss", name, LOSSES)
    return LOSSES[name](**kwargs)
