"""Instance discrimination: SimCLR (Chen et al. 2020) with an optional MoCo queue (He et al. 2020).

Every sample is its own class: two augmentations of one item are positives, every other view
in the batch a negative. Views go through the tower ``f`` and a projection head ``g``; the loss
is NT-Xent on ``g(f(x))`` and ``f`` is what initialises a dual-encoder tower.

With ``queue_size > 0`` the negatives are instead the keys of past batches held in a
:class:`~mmssl.losses.NegativeQueue` (MoCo): query ``q = g(f(view1))`` scores its key
``k = g_k(f_k(view2))`` against the queue with InfoNCE, symmetrised over the two views. With
``momentum > 0`` the keys come from a momentum copy of tower and head (MoCo's key encoder,
``theta_k <- m theta_k + (1 - m) theta_q`` each step), else from the same network, detached.
Until the queue holds a batch, the loss falls back to NT-Xent. Under torchrun, NT-Xent's negatives
are the global batch (gathered with gradients); the queue enqueues every rank's keys.

Batch: ``{"view1": inputs, "view2": inputs, "index": (B,)}`` where inputs are what the tower's
``forward`` takes (image tensors (B, 3, S, S) or token dicts).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from mmssl.contrastive.collapse import collapse_logs
from mmssl.contrastive.heads import projection_head
from mmssl.distributed import all_gather_with_grad
from mmssl.losses import NegativeQueue, info_nce_loss, nt_xent_loss


class SimCLR(nn.Module):
    """Tower + projection head trained with NT-Xent (or InfoNCE against a MoCo queue).

    Args:
        encoder: the tower (``output_dim`` features); exported for dual encoders.
        projection_dim: size of ``g``'s output, where the loss is computed.
        hidden_dim: width of ``g``'s hidden layer (0: a linear head).
        temperature: NT-Xent / InfoNCE temperature.
        queue_size: MoCo queue length K (0: in-batch negatives only).
        momentum: key-encoder EMA coefficient m (0: no key encoder; only used with a queue).
    """

    view_kind = "two_augmented"

    def __init__(self, encoder: nn.Module, projection_dim: int = 128, hidden_dim: int = 512,
                 temperature: float = 0.2, queue_size: int = 0, momentum: float = 0.0):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.encoder = encoder
        self.head = projection_head(encoder.output_dim, hidden_dim, projection_dim)
        self.temperature = temperature
        self.queue = NegativeQueue(projection_dim, queue_size) if queue_size > 0 else None
        self.momentum = momentum
        self.key_encoder = self.key_head = None
        if self.queue is not None and momentum > 0:
            self.key_encoder = copy.deepcopy(encoder).requires_grad_(False)
            self.key_head = copy.deepcopy(self.head).requires_grad_(False)

    def embed(self, inputs) -> torch.Tensor:
        """(B, projection_dim) L2-normalised projections ``g(f(x))``."""
        return F.normalize(self.head(self.encoder(inputs)), dim=1)

    @torch.no_grad()
    def _momentum_update(self) -> None:
        """``theta_k <- m theta_k + (1 - m) theta_q`` (buffers such as BatchNorm statistics copied)."""
        for key_module, module in ((self.key_encoder, self.encoder), (self.key_head, self.head)):
            for key_param, param in zip(key_module.parameters(), module.parameters()):
                key_param.mul_(self.momentum).add_(param.detach(), alpha=1 - self.momentum)
            for key_buffer, buffer in zip(key_module.buffers(), module.buffers()):
                key_buffer.copy_(buffer)

    @torch.no_grad()
    def _keys(self, inputs) -> torch.Tensor:
        if self.key_encoder is None:
            return self.embed(inputs).detach()
        return F.normalize(self.key_head(self.key_encoder(inputs)), dim=1)

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        first = self.embed(batch["view1"])  # (B, P)
        second = self.embed(batch["view2"])  # (B, P)
        logs = collapse_logs(first)
        if self.queue is None:  # under torchrun the negatives are the global batch, as in SimCLR
            loss = nt_xent_loss(all_gather_with_grad(first), all_gather_with_grad(second), self.temperature)
        else:
            if self.key_encoder is not None:
                self._momentum_update()
            keys_first, keys_second = self._keys(batch["view1"]), self._keys(batch["view2"])  # (B, P) each
            if len(self.queue) < first.shape[0]:
                loss = nt_xent_loss(first, second, self.temperature)
            else:
                negatives = self.queue.negatives()  # (K, P)
                loss = (info_nce_loss(first, keys_second, negatives, self.temperature)
                        + info_nce_loss(second, keys_first, negatives, self.temperature)) / 2
            self.queue.enqueue(keys_second)
            logs["queue_fill"] = len(self.queue) / self.queue.keys.shape[0]
        with torch.no_grad():
            logs["positive_cosine"] = float((first * second).sum(1).mean())
        return loss, logs
