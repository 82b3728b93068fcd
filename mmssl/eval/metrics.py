"""Retrieval metrics from a score matrix: rank of the gold, Recall@K, MRR, NDCG@K, random baselines.

Conventions shared by every function in this file:

* ``scores`` is ``(Q, N)``: row ``q`` scores the ``N`` candidates for query ``q``; higher is better.
* ``gold`` is either ``(Q,)`` int64, the index of the one relevant candidate per query, or ``(Q, N)``
  bool, a relevance matrix for several golds per query (an image corpus with duplicate captions:
  every image captioned "cat" is a right answer to "cat"). Every query needs at least one gold.
* Ranks are 1-based; with several golds the rank of a query is the rank of its best-ranked gold.
* **Ties are pessimistic** by default: a gold tied with distractors is ranked after all of them, so a
  scorer that gives everything the same score gets the worst rank, never the best for free. Ties
  matter for lexical scorers (BM25 scores every candidate without a shared term 0) and almost never
  for float embeddings. ``ties="optimistic"`` ranks golds before tied distractors (an upper bound;
  the gap between the two shows how much a result rests on ties). Ties among golds do not matter:
  relevance is binary. We do not average over tie orders: the expected reciprocal rank is not the
  reciprocal of the expected rank, and one rule for every metric keeps them consistent.
* ``recall@K`` is success@K, the fraction of queries with at least one gold in the top ``K`` (the
  image–text retrieval convention; with one gold it is plain recall).
* Work is chunked over queries so temporaries stay ``(chunk, N)`` with ``chunk * N <= max_elements``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch

TIES = ("pessimistic", "optimistic")
DEFAULT_MAX_ELEMENTS = 1 << 22  # 4M scores per chunk: NDCG sorts keep three int64 copies (~100 MB)


def _check(scores: torch.Tensor, gold: torch.Tensor, ties: str) -> None:
    if scores.ndim != 2 or not scores.is_floating_point():
        raise ValueError(f"scores must be a float (Q, N) matrix, got {scores.dtype} {tuple(scores.shape)}")
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    num_queries, num_candidates = scores.shape
    if gold.dtype == torch.bool:
        if gold.shape != scores.shape:
            raise ValueError(f"relevance matrix {tuple(gold.shape)} must match scores {tuple(scores.shape)}")
        if not bool(gold.any(dim=1).all()):
            missing = int((~gold.any(dim=1)).sum())
            raise ValueError(f"{missing} queries have no relevant candidate; drop them before evaluating")
    elif not gold.is_floating_point() and not gold.is_complex():
        if gold.shape != (num_queries,):
            raise ValueError(f"gold indices must be ({num_queries},), got {tuple(gold.shape)}")
        if num_queries and (int(gold.min()) < 0 or int(gold.max()) >= num_candidates):
            low, high = int(gold.min()), int(gold.max())
            raise ValueError(f"gold indices must lie in [0, {num_candidates}), got [{low}, {high}]")
    else:
        raise ValueError(f"gold must be int indices (Q,) or a bool relevance matrix (Q, N), got {gold.dtype}")


def _chunks(
    scores: torch.Tensor, gold: torch.Tensor, max_elements: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yields ``(scores (C, N), gold (C,) or (C, N))`` for consecutive chunks of queries."""
    num_queries, num_candidates = scores.shape
    rows = max(1, max_elements // max(1, num_candidates))
    gold = gold.to(scores.device)
    for start in range(0, num_queries, rows):
        chunk = scores[start : start + rows]  # (C, N)
        if torch.isnan(chunk).any():
            raise ValueError("scores contain NaN; a ranking of NaN scores is meaningless")
        yield chunk, gold[start : start + rows]


def ranks_of_gold(
    scores: torch.Tensor, gold: torch.Tensor, ties: str = "pessimistic", max_elements: int = DEFAULT_MAX_ELEMENTS
) -> torch.Tensor:
    """1-based rank of the best-ranked gold of each query.

    rank = 1 + (distractors scored above the best gold) [+ distractors tied with it, if pessimistic].

    Args:
        scores: (Q, N) similarities, higher is better.
        gold: (Q,) int gold index per query, or (Q, N) bool relevance matrix.
        ties: "pessimistic" (default) or "optimistic"; see the module docstring.
        max_elements: bound on ``chunk * N`` for temporaries.

    Returns:
        (Q,) int64 ranks in [1, N].
    """
    _check(scores, gold, ties)
    ranks = []
    for chunk, relevant in _chunks(scores, gold, max_elements):
        if relevant.ndim == 1:  # one gold: compare with its score; ">=" counts the gold itself
            gold_score = chunk.gather(1, relevant[:, None])  # (C, 1)
            if ties == "pessimistic":
                ranks.append((chunk >= gold_score).sum(dim=1))  # (C,)
            else:
                ranks.append(1 + (chunk > gold_score).sum(dim=1))  # (C,)
            continue
        best_gold = chunk.masked_fill(~relevant, -math.inf).amax(dim=1, keepdim=True)  # (C, 1)
        ahead = chunk >= best_gold if ties == "pessimistic" else chunk > best_gold  # (C, N)
        ranks.append(1 + (ahead & ~relevant).sum(dim=1))  # (C,)
    return torch.cat(ranks) if ranks else torch.zeros(0, dtype=torch.long, device=scores.device)


def recall_from_ranks(ranks: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """Success@K for each K from ranks (Q,): the fraction of queries ranked within the top K."""
    return {int(k): float((ranks <= k).double().mean()) for k in ks}


def mrr_from_ranks(ranks: torch.Tensor) -> float:
    """Mean reciprocal rank from ranks (Q,)."""
    return float((1.0 / ranks.double()).mean())


def recall_at_k(
    scores: torch.Tensor,
    gold: torch.Tensor,
    ks: Sequence[int] = (1, 5, 10),
    ties: str = "pessimistic",
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> dict[int, float]:
    """Recall@K (success@K): fraction of queries with a gold among their top K candidates.

    Args:
        scores: (Q, N) similarities.
        gold: (Q,) int gold index per query, or (Q, N) bool relevance matrix.
        ks: cut-offs.
        ties: "pessimistic" or "optimistic".
        max_elements: bound on ``chunk * N`` for temporaries.

    Returns:
        ``{K: recall}`` for each K in ``ks``.
    """
    return recall_from_ranks(ranks_of_gold(scores, gold, ties, max_elements), ks)


def mean_reciprocal_rank(
    scores: torch.Tensor, gold: torch.Tensor, ties: str = "pessimistic", max_elements: int = DEFAULT_MAX_ELEMENTS
) -> float:
    """Mean over queries of 1 / rank of the best-ranked gold.

    Args:
        scores: (Q, N) similarities.
        gold: (Q,) int gold index per query, or (Q, N) bool relevance matrix.
        ties: "pessimistic" or "optimistic".
        max_elements: bound on ``chunk * N`` for temporaries.

    Returns:
        MRR in (0, 1].
    """
    return mrr_from_ranks(ranks_of_gold(scores, gold, ties, max_elements))


def ndcg_at_k(
    scores: torch.Tensor,
    gold: torch.Tensor,
    k: int = 10,
    ties: str = "pessimistic",
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> float:
    """Mean NDCG@K with binary relevance.

    DCG@K = sum over golds at position p <= K of 1 / log2(p + 1); the ideal DCG puts all R golds
    first. Every gold counts (unlike Recall@K and MRR, which look at the best gold only). One gold
    per query reads it off the ranks; a relevance matrix costs a sort per row (O(N log N)).

    Args:
        scores: (Q, N) similarities.
        gold: (Q,) int gold index per query, or (Q, N) bool relevance matrix.
        k: cut-off.
        ties: "pessimistic" or "optimistic".
        max_elements: bound on ``chunk * N`` for temporaries.

    Returns:
        NDCG@K in [0, 1], averaged over queries.
    """
    _check(scores, gold, ties)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    num_queries, num_candidates = scores.shape
    if gold.dtype != torch.bool:  # one gold: its DCG is 1 / log2(rank + 1) within the cut, ideal 1
        ranks = ranks_of_gold(scores, gold, ties, max_elements).double()  # (Q,)
        return float(torch.where(ranks <= k, 1.0 / torch.log2(ranks + 1), torch.zeros_like(ranks)).mean())
    cut = min(k, num_candidates)
    discounts = 1.0 / torch.log2(torch.arange(2, cut + 2, device=scores.device, dtype=torch.float64))  # (K,)
    ideal_prefix = torch.cat([discounts.new_zeros(1), discounts.cumsum(0)])  # (K+1,) ideal DCG for R golds
    total = 0.0
    for chunk, relevant in _chunks(scores, gold, max_elements):
        # Order = score descending, ties broken by relevance (distractors first when pessimistic):
        # sort by relevance first, then a stable sort by score keeps that order within ties.
        by_relevance = torch.sort(relevant.to(torch.uint8), dim=1, stable=True, descending=ties == "optimistic").indices
        by_score = torch.sort(chunk.gather(1, by_relevance), dim=1, stable=True, descending=True).indices  # (C, N)
        ranked_relevance = relevant.gather(1, by_relevance.gather(1, by_score))[:, :cut]  # (C, K)
        dcg = (ranked_relevance.double() * discounts).sum(dim=1)  # (C,)
        ideal = ideal_prefix[relevant.sum(dim=1).clamp_max(cut)]  # (C,)
        total += float((dcg / ideal).sum())
    return total / num_queries if num_queries else float("nan")


def retrieval_metrics(
    scores: torch.Tensor,
    gold: torch.Tensor,
    ks: Sequence[int] = (1, 5, 10),
    ties: str = "pessimistic",
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> dict[str, float]:
    """MRR and Recall@K from one pass over the ranks: ``{"mrr": .., "recall@1": .., ...}``.

    Args:
        scores: (Q, N) similarities.
        gold: (Q,) int gold index per query, or (Q, N) bool relevance matrix.
        ks: Recall cut-offs.
        ties: "pessimistic" or "optimistic".
        max_elements: bound on ``chunk * N`` for temporaries.
    """
    ranks = ranks_of_gold(scores, gold, ties, max_elements)
    out = {"mrr": mrr_from_ranks(ranks)}
    out.update({f"recall@{k}": value for k, value in recall_from_ranks(ranks, ks).items()})
    return out


def _log_binomial(n: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(n + 1) - torch.lgamma(r + 1) - torch.lgamma(n - r + 1)


def random_baseline(
    num_candidates: int,
    num_relevant: int | Sequence[int] | torch.Tensor = 1,
    ks: Sequence[int] = (1, 5, 10),
    ndcg_k: int = 10,
) -> dict[str, float]:
    """Expected metrics of a uniformly random ranking, to print beside real numbers.

    With one gold among N: Recall@K = K / N, MRR = H_N / N (H_N the N-th harmonic number). With R
    golds: Recall@K = 1 - C(N-R, K) / C(N, K); P(best gold at p) = C(N-p, R-1) / C(N, R);
    E[DCG@K] = (R / N) * sum_{p<=K} 1 / log2(p + 1). Per-query R are averaged.

    Args:
        num_candidates: N.
        num_relevant: R, one for all queries or one per query (e.g. ``relevance.sum(1)``).
        ks: Recall cut-offs.
        ndcg_k: NDCG cut-off.

    Returns:
        ``{"mrr": .., "recall@K": .., "ndcg@K": ..}``.
    """
    relevant = torch.as_tensor(num_relevant, dtype=torch.float64).reshape(-1)  # (Q,) or (1,)
    if relevant.numel() == 0 or bool((relevant < 1).any()) or bool((relevant > num_candidates).any()):
        raise ValueError(f"num_relevant must lie in [1, {num_candidates}]")
    n = torch.tensor(float(num_candidates), dtype=torch.float64)
    out: dict[str, float] = {}

    values, counts = torch.unique(relevant, return_counts=True)
    weights = counts.double() / relevant.numel()  # (U,)
    positions = torch.arange(1, num_candidates + 1, dtype=torch.float64)  # (N,)
    mrr = 0.0
    for r, weight in zip(values, weights):
        first = positions[: num_candidates - int(r) + 1]  # best gold can sit at 1 .. N-R+1
        p_first = torch.exp(_log_binomial(n - first, r - 1) - _log_binomial(n, r))  # (N-R+1,)
        mrr += float(weight * (p_first / first).sum())
    out["mrr"] = mrr

    for k in ks:
        kk = torch.tensor(float(min(k, num_candidates)), dtype=torch.float64)
        # P(no gold in the top K) = C(N-R, K) / C(N, K), zero once R > N - K
        none_in_top = torch.exp(_log_binomial(n - relevant, kk) - _log_binomial(n, kk))  # (Q,)
        none_in_top = torch.where(relevant <= n - kk, none_in_top, torch.zeros_like(relevant))
        out[f"recall@{k}"] = float((1 - none_in_top).mean())

    cut = min(ndcg_k, num_candidates)
    discounts = 1.0 / torch.log2(torch.arange(2, cut + 2, dtype=torch.float64))  # (K,)
    ideal_prefix = torch.cat([discounts.new_zeros(1), discounts.cumsum(0)])  # (K+1,)
    ideal = ideal_prefix[relevant.clamp_max(cut).long()]  # (Q,)
    out[f"ndcg@{ndcg_k}"] = float((relevant / n * discounts.sum() / ideal).mean())
    return out
