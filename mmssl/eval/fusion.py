"""Dense + lexical (BM25) score fusion: pure functions of score matrices.

Two fusions, both parameterised by one ``lexical_weight`` w in [0, 1]:

* ``"minmax"`` (calibrated weighted sum): each query's scores are min-max scaled to [0, 1] over
  the candidates on each side, then ``(1 - w) * dense + w * lexical``. Scales differ wildly
  (cosines in [-1, 1], BM25 unbounded), so raw sums would let one side drown the other.
* ``"rrf"`` (reciprocal rank fusion, Cormack et al., 2009): ``(1 - w) / (k + rank_dense) +
  w / (k + rank_lexical)`` with 1-based ranks and ``k = 60``; it ignores score magnitudes.

With ``w = 0`` both rank exactly as the dense scores do, and with ``w = 1`` as the lexical ones
(tested). The same functions serve the full-corpus evaluation (every document a candidate) and
index search (the union of both sides' top hits; see :mod:`mmssl.index.hybrid`).
"""

from __future__ import annotations

import numpy as np

FUSIONS = ("minmax", "rrf")
RRF_K = 60


def minmax_rows(scores: np.ndarray) -> np.ndarray:
    """Each row scaled to [0, 1] by its own min and max; a constant row becomes all zeros."""
    scores = np.asarray(scores, dtype=np.float64)  # (Q, N)
    low = scores.min(axis=1, keepdims=True)  # (Q, 1)
    span = scores.max(axis=1, keepdims=True) - low  # (Q, 1)
    return np.divide(scores - low, span, out=np.zeros_like(scores), where=span > 0)


def ranks_desc(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every entry within its row, best (highest) first; ties broken by position."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), axis=1, kind="stable")  # (Q, N)
    ranks = np.empty_like(order)
    rows = np.arange(order.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, order.shape[1] + 1)[None, :]
    return ranks


def fuse_scores(dense: np.ndarray, lexical: np.ndarray, lexical_weight: float, method: str = "minmax",
                rrf_k: int = RRF_K) -> np.ndarray:
    """Fused (Q, N) scores of two (Q, N) score matrices over the same candidates (see module docstring).

    Raises:
        ValueError: shapes differ, ``lexical_weight`` is outside [0, 1], or ``method`` is unknown.
    """
    dense, lexical = np.asarray(dense, dtype=np.float64), np.asarray(lexical, dtype=np.float64)
    if dense.shape != lexical.shape or dense.ndim != 2:
        raise ValueError(f"dense and lexical scores must both be (Q, N), got {dense.shape} and {lexical.shape}")
    if not 0.0 <= lexical_weight <= 1.0:
        raise ValueError(f"lexical_weight must be in [0, 1], got {lexical_weight}")
    if method == "minmax":
        return (1.0 - lexical_weight) * minmax_rows(dense) + lexical_weight * minmax_rows(lexical)
    if method == "rrf":
        return (1.0 - lexical_weight) / (rrf_k + ranks_desc(dense)) + lexical_weight / (rrf_k + ranks_desc(lexical))
    raise ValueError(f"unknown fusion {method!r}; choose one of {', '.join(FUSIONS)}")
