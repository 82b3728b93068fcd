"""Contrastive multiview coding (CMC, Tian et al. 2020): one encoder per view, contrasted pairwise.

Each sample comes as V >= 2 views (images: luma vs chroma, see
:func:`~mmssl.contrastive.augment.luma_chroma_views`; functions: body vs signature vs docstring,
see :func:`~mmssl.contrastive.augment.function_views`). View ``v`` has its own tower and linear
head; every pair of views (CMC's "full graph") is contrasted, in both directions:

* ``objective="info_nce"`` without a memory bank: symmetric InfoNCE over the batch;
* ``objective="info_nce"`` with ``memory_bank``: the positive of ``z_a[i]`` is view b's memory of
  item i, the negatives ``num_negatives`` rows drawn uniformly from view b's memory bank (CMC's
  softmax form);
* ``objective="nce"`` (needs ``memory_bank``): binary NCE of the positive against the bank
  noise, with score ``s = z_a . z_b / T - log Z`` (``log Z`` learned, initialised to ``log N``)
  and uniform noise ``q = 1 / N`` (CMC's NCE form).

The memory bank holds a momentum average of each item's embedding per view (buffers, so it is
checkpointed). **Which tower is exported:** ``.encoder`` is the encoder of the *first* view (the
luma encoder for images, the body encoder for code), the one whose input is closest to what the
dual encoder feeds its item tower; the other views' encoders live in ``view_encoders``.

Batch: ``{"index": (B,), <view name>: inputs, ...}``.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from mmssl.contrastive.collapse import collapse_logs
from mmssl.distributed import all_gather_no_grad, all_gather_with_grad
from mmssl.losses import NCELoss, info_nce_loss, symmetric_info_nce_loss

CMC_OBJECTIVES = ("info_nce", "nce")


class CMC(nn.Module):
    """Per-view towers and heads, pairwise contrast.

    Args:
        encoders: one tower per view, in view order; the first is exported as ``.encoder``.
        views: the views' names (keys of the batch), same order.
        num_samples: N, the training set size (memory-bank rows; unused without a bank).
        projection_dim: shared embedding size of the heads.
        temperature: InfoNCE / NCE temperature.
        objective: ``"info_nce"`` or ``"nce"``.
        memory_bank: draw negatives from per-view memory banks instead of the batch.
        num_negatives: bank negatives per query.
        bank_momentum: ``bank[i] <- normalise(m bank[i] + (1 - m) z_i)``.
    """

    view_kind = "split"

    def __init__(self, encoders: list[nn.Module], views: list[str], num_samples: int, projection_dim: int = 128,
                 temperature: float = 0.07, objective: str = "info_nce", memory_bank: bool = False,
                 num_negatives: int = 1024, bank_momentum: float = 0.5):
        super().__init__()
        if len(encoders) != len(views) or len(views) < 2 or len(set(views)) != len(views):
            raise ValueError(f"CMC needs >= 2 distinct views with one encoder each; got views {views} "
                             f"and {len(encoders)} encoders")
        if objective not in CMC_OBJECTIVES:
            raise ValueError(f"objective must be one of {CMC_OBJECTIVES}, got {objective!r}")
        if objective == "nce" and not memory_bank:
            raise ValueError("objective='nce' draws its noise from the memory bank; set memory_bank=True")
        self.views = list(views)
        self.encoder = encoders[0]
        self.view_encoders = nn.ModuleDict(dict(zip(views[1:], encoders[1:])))
        self.heads = nn.ModuleDict({v: nn.Linear(e.output_dim, projection_dim) for v, e in zip(views, encoders)})
        self.temperature, self.objective, self.num_negatives, self.bank_momentum = \
            temperature, objective, num_negatives, bank_momentum
        self.num_samples = num_samples
        bank = F.normalize(torch.randn(len(views), num_samples, projection_dim), dim=2) if memory_bank else None
        self.register_buffer("bank", bank)  # (V, N, P) or None
        if objective == "nce":
            self.nce = NCELoss(torch.ones(num_samples), num_negatives)
            self.log_normaliser = nn.Parameter(torch.tensor(math.log(num_samples)))

    def view_encoder(self, view: str) -> nn.Module:
        return self.encoder if view == self.views[0] else self.view_encoders[view]

    def embed(self, view: str, inputs) -> torch.Tensor:
        """(B, projection_dim) L2-normalised embedding of one view."""
        return F.normalize(self.heads[view](self.view_encoder(view)(inputs)), dim=1)

    def _pair_loss(self, a: int, b: int, z: dict[str, torch.Tensor], index: torch.Tensor) -> torch.Tensor:
        first, second = z[self.views[a]], z[self.views[b]]  # (B, P) each
        if self.bank is None:  # in-batch negatives: the global batch under torchrun
            return symmetric_info_nce_loss(all_gather_with_grad(first), all_gather_with_grad(second), self.temperature)
        noise = torch.randint(self.num_samples, (index.shape[0], self.num_negatives), device=index.device)  # (B, K)
        losses = []
        for query, key_view in ((first, b), (second, a)):
            # the positive is the key view's memory of the same item, as in CMC: with a fresh
            # positive (with gradient) against stale negatives, collapsing every embedding to
            # one point would lower the loss until the bank caught up
            key = self.bank[key_view][index]  # (B, P)
            negatives = self.bank[key_view][noise]  # (B, K, P)
            if self.objective == "info_nce":
                losses.append(info_nce_loss(query, key, negatives, self.temperature))
            else:
                data_scores = (query * key).sum(1) / self.temperature - self.log_normaliser  # (B,)
                noise_scores = torch.einsum("bp,bkp->bk", query, negatives) / self.temperature \
                    - self.log_normaliser  # (B, K)
                losses.append(self.nce(data_scores, noise_scores, index, noise))
        return (losses[0] + losses[1]) / 2

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        index = batch["index"]  # (B,)
        z = {view: self.embed(view, batch[view]) for view in self.views}  # name -> (B, P)
        logs = collapse_logs(z[self.views[0]])
        pairs = list(itertools.combinations(range(len(self.views)), 2))
        total = 0.0
        for a, b in pairs:
            pair_loss = self._pair_loss(a, b, z, index)
            logs[f"loss_{self.views[a]}_{self.views[b]}"] = pair_loss.item()
            total = total + pair_loss
        if self.bank is not None:
            with torch.no_grad():  # every rank's batch updates every rank's bank
                rows = all_gather_no_grad(index)  # (W*B,)
                for v, view in enumerate(self.views):
                    fresh = all_gather_no_grad(z[view])  # (W*B, P)
                    updated = self.bank_momentum * self.bank[v, rows] + (1 - self.bank_momentum) * fresh
                    self.bank[v, rows] = F.normalize(updated, dim=1)
        return total / len(pairs), logs
