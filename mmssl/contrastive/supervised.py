"""Supervised metric learning where labels exist: a tower + projection trained with a labelled loss
from the loss library (triplet with a miner, lifted structure, soft nearest neighbours, ...).

The same interface as the self-supervised methods, so labelled data (emoji categories, code
packages) can pretrain a tower too, and the benchmark can compare label supervision with
self-supervision at equal budget. Batch: ``{"view1": inputs, "label": (B,), "index": (B,)}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmssl.contrastive.collapse import collapse_logs
from mmssl.contrastive.heads import projection_head
from mmssl.losses import LOSSES, build_loss

LABELLED_LOSSES = tuple(name for name, cls in LOSSES.items() if getattr(cls, "input_kind", None) == "labelled")


class SupervisedMetric(nn.Module):
    """Tower + projection head + a labelled loss on the L2-normalised projections.

    Args:
        encoder: the tower; exported for dual encoders.
        loss_name: a key of :data:`mmssl.losses.LOSSES` whose ``input_kind`` is ``"labelled"``.
        projection_dim, hidden_dim: the projection head.
        **loss_options: passed to the loss (``margin``, ``mining``, ``temperature``, ...).
    """

    view_kind = "labelled"

    def __init__(self, encoder: nn.Module, loss_name: str = "triplet", projection_dim: int = 128,
                 hidden_dim: int = 512, **loss_options):
        super().__init__()
        if loss_name not in LABELLED_LOSSES:
            raise ValueError(f"loss {loss_name!r} does not take labels; choose one of {', '.join(LABELLED_LOSSES)}")
        self.encoder = encoder
        self.head = projection_head(encoder.output_dim, hidden_dim, projection_dim)
        self.criterion = build_loss(loss_name, **loss_options)

    def embed(self, inputs) -> torch.Tensor:
        return F.normalize(self.head(self.encoder(inputs)), dim=1)  # (B, P)

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        if "label" not in batch:
            raise ValueError("a supervised method needs labelled batches (a 'label' entry); build the dataset "
                             "with labels, e.g. --label-field category")
        embeddings = self.embed(batch["view1"])  # (B, P)
        return self.criterion(embeddings, batch["label"]), collapse_logs(embeddings)
