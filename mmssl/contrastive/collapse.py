"""Representation-collapse monitor: per-dimension spread of L2-normalised embeddings.

A collapsed encoder maps every input to (nearly) the same point, or to a low-dimensional subspace.
For unit vectors spread uniformly on the sphere in D dimensions, each coordinate has standard
deviation ``1 / sqrt(D)`` (SimSiam, Chen & He 2021, section 4.1); a fully collapsed batch has 0.
Every contrastive method logs ``embedding_std_mean`` and ``embedding_std_min`` (over dimensions)
as that ratio, so 1.0 is "well spread" whatever D is, and ``collapsed`` (0 or 1) when the mean ratio
falls below ``threshold``; the first collapse of a run is also reported by a warning.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

COLLAPSE_THRESHOLD = 0.1  # mean std below 10% of a uniform sphere's 1/sqrt(D) counts as collapse


class RepresentationCollapseWarning(UserWarning):
    """The embeddings of a batch have (nearly) no spread: the encoder is collapsing."""


@torch.no_grad()
def collapse_logs(embeddings: torch.Tensor, threshold: float = COLLAPSE_THRESHOLD) -> dict[str, float]:
    """Spread statistics of a batch of embeddings, in units of ``1 / sqrt(D)``.

    Args:
        embeddings: (B, D) embeddings (normalised here), B >= 2.
        threshold: ``collapsed`` is 1 when the mean per-dimension std ratio is below it.

    Returns:
        ``{"embedding_std_mean", "embedding_std_min", "collapsed"}``; a warning is issued on collapse.
    """
    if embeddings.ndim != 2 or embeddings.shape[0] < 2:
        raise ValueError(f"collapse_logs needs (B, D) embeddings with B >= 2, got {tuple(embeddings.shape)}")
    unit = F.normalize(embeddings.detach().float(), dim=1)  # (B, D)
    ratio = unit.std(dim=0) * unit.shape[1] ** 0.5  # (D,) 1.0 = spread like a uniform sphere
    mean = float(ratio.mean())
    collapsed = mean < threshold
    if collapsed:
        warnings.warn(f"representation collapse: mean per-dimension std of the normalised embeddings is {mean:.3f} "
                      f"x 1/sqrt(D) (threshold {threshold}); lower the learning rate, raise the temperature or "
                      "the batch size", RepresentationCollapseWarning, stacklevel=2)
    return {"embedding_std_mean": mean, "embedding_std_min": float(ratio.min()), "collapsed": float(collapsed)}
