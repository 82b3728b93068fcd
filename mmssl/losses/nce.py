"""Noise-contrastive estimation (Gutmann & Hyvarinen 2010).

A model scores samples with an unnormalised log-density ``s(x) = log p_model(x)`` (a learnable
log-normaliser can simply be part of ``s``). NCE fits it by logistic regression of data against
``k`` noise samples per data sample drawn from a known noise distribution ``q``. The posterior
log-odds of "data" for a sample ``x`` is

    G(x) = s(x) - log(k * q(x))

and the loss per data sample ``x`` with its noise samples ``y_1..y_k`` is

    -log sigmoid(G(x)) - sum_j log(1 - sigmoid(G(y_j)))

(``log sigmoid`` keeps it finite for any score). ``q`` must be positive wherever data can be.
There is no pytorch-metric-learning peer; the test checks a loop reference and that the optimum
recovers a known normalised log-density.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mmssl.losses.checks import check_embeddings
from mmssl.losses.reduction import reduce_losses


def nce_loss(
    data_scores: torch.Tensor,
    noise_scores: torch.Tensor,
    data_log_noise_prob: torch.Tensor,
    noise_log_noise_prob: torch.Tensor,
    reduction: str = "mean",
) -> torch.Tensor:
    """Binary NCE loss with the ``log(k q(x))`` correction, k = ``noise_scores.shape[1]``.

    Args:
        data_scores: (B,) model log-density (unnormalised) of each data sample.
        noise_scores: (B, K) model log-density of the K noise samples drawn for each data sample.
        data_log_noise_prob: (B,) ``log q`` of each data sample.
        noise_log_noise_prob: (B, K) ``log q`` of each noise sample.
        reduction: ``"mean"`` / ``"sum"`` over data samples, or ``"none"`` ((B,)).

    Returns:
        Scalar loss, or (B,) for ``reduction="none"``.
    """
    check_embeddings("data_scores", data_scores, ndim=1)
    check_embeddings("noise_scores", noise_scores, ndim=2)
    check_embeddings("data_log_noise_prob", data_log_noise_prob, ndim=1)
    check_embeddings("noise_log_noise_prob", noise_log_noise_prob, ndim=2)
    if noise_scores.shape[0] != data_scores.shape[0]:
        raise ValueError(
            f"noise_scores has {noise_scores.shape[0]} rows but data_scores has {data_scores.shape[0]}; "
            "pass a (batch, num_noise) matrix, one row of noise samples per data sample."
        )
    if data_log_noise_prob.shape != data_scores.shape:
        raise ValueError(
            f"data_log_noise_prob has shape {tuple(data_log_noise_prob.shape)} but data_scores has "
            f"{tuple(data_scores.shape)}; pass log q(x) for every data sample."
        )
    if noise_log_noise_prob.shape != noise_scores.shape:
        raise ValueError(
            f"noise_log_noise_prob has shape {tuple(noise_log_noise_prob.shape)} but noise_scores has "
            f"{tuple(noise_scores.shape)}; pass log q(y) for every noise sample."
        )
    log_num_noise = math.log(noise_scores.shape[1]) if noise_scores.shape[1] else 0.0
    data_logit = data_scores - (log_num_noise + data_log_noise_prob)  # (B,) G(x)
    noise_logit = noise_scores - (log_num_noise + noise_log_noise_prob)  # (B, K) G(y)
    losses = -F.logsigmoid(data_logit) - F.logsigmoid(-noise_logit).sum(dim=1)  # (B,)
    return reduce_losses(losses, None, reduction)


class NCELoss(nn.Module):
    """NCE against a fixed categorical noise distribution over ``V`` items (words, instances ...).

    Holds ``log q`` as a buffer, draws noise with :meth:`sample_noise`, and looks ``log q`` up by
    index in :meth:`forward`.

    Args:
        noise_probs: (V,) noise probabilities (normalised here; all must be > 0).
        num_noise: K, noise samples per data sample.
        reduction: as in :func:`nce_loss`.
    """

    input_kind = "noise"

    def __init__(self, noise_probs: torch.Tensor, num_noise: int, reduction: str = "mean") -> None:
        super().__init__()
        check_embeddings("noise_probs", noise_probs, ndim=1)
        if not bool((noise_probs > 0).all()):
            raise ValueError("noise_probs must be > 0 everywhere; smooth the distribution (add a small count).")
        if num_noise < 1:
            raise ValueError(f"num_noise must be >= 1, got {num_noise}.")
        self.register_buffer("log_noise_probs", (noise_probs / noise_probs.sum()).log())  # (V,)
        self.num_noise, self.reduction = num_noise, reduction

    def sample_noise(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw (batch_size, num_noise) noise indices from ``q``, with replacement."""
        draws = torch.multinomial(
            self.log_noise_probs.exp(), batch_size * self.num_noise, replacement=True, generator=generator
        )
        return draws.view(batch_size, self.num_noise)  # (B, K)

    def forward(
        self,
        data_scores: torch.Tensor,
        noise_scores: torch.Tensor,
        data_indices: torch.Tensor,
        noise_indices: torch.Tensor,
    ) -> torch.Tensor:
        """NCE loss; ``data_scores`` (B,), ``noise_scores`` (B, K), indices into the V items."""
        return nce_loss(
            data_scores,
            noise_scores,
            self.log_noise_probs[data_indices],
            self.log_noise_probs[noise_indices],
            self.reduction,
        )
