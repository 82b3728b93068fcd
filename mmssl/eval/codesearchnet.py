"""The CodeSearchNet evaluation protocol (Husain et al., 2019, "CodeSearchNet Challenge", sec. 4).

The held-out (query, code) pairs are cut into fixed groups of ``group_size`` (1000) pairs; within a
group each query is scored against all the group's code, so its gold competes with the
``group_size - 1`` other golds as distractors. MRR is averaged over all queries of all full groups;
Recall@1/5/10 come from the same ranks.

Grouping (deterministic, documented choices):
  * the pairs are shuffled with ``numpy.random.default_rng(seed).permutation`` (PCG64) so a group
    mixes packages; ``seed=None`` keeps the input order, as the original evaluation batches the test
    files in order (groups of neighbouring functions are harder: their distractors look alike);
  * the remainder (``num_pairs % group_size`` pairs) is **dropped**, as CodeSearchNet drops its last
    incomplete batch, so every query has exactly ``group_size - 1`` distractors and numbers from
    different splits stay comparable. ``drop_remainder=False`` keeps it as one smaller, easier group.

Ties are pessimistic (see ``mmssl.eval.metrics``): a gold tied with distractors ranks after them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from mmssl.eval.metrics import mrr_from_ranks, random_baseline, ranks_of_gold, recall_from_ranks

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def codesearchnet_groups(
    num_pairs: int, group_size: int = 1000, seed: int | None = 0, drop_remainder: bool = True
) -> list[torch.Tensor]:
    """Deterministic groups of pair indices for the CodeSearchNet protocol.

    Args:
        num_pairs: number of (query, code) pairs, indexed 0 .. num_pairs - 1.
        group_size: pairs per group (1000 in CodeSearchNet).
        seed: shuffle seed; ``None`` keeps the input order.
        drop_remainder: drop the last incomplete group (CodeSearchNet) or keep it.

    Returns:
        List of (group_size,) int64 index tensors (the last one shorter if kept).

    Raises:
        ValueError: if no full group fits and the remainder is dropped.
    """
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (a gold needs distractors), got {group_size}")
    if drop_remainder and num_pairs < group_size:
        raise ValueError(
            f"{num_pairs} pairs do not fill one group of {group_size}; "
            "use a smaller group_size or drop_remainder=False"
        )
    order = np.arange(num_pairs) if seed is None else np.random.default_rng(seed).permutation(num_pairs)
    order = torch.from_numpy(order.astype(np.int64))  # (num_pairs,)
    stop = num_pairs - num_pairs % group_size if drop_remainder else num_pairs
    groups = list(order[:stop].split(group_size))
    return [group for group in groups if len(group) >= 2]


def codesearchnet_eval(
    score_fn: ScoreFn,
    num_pairs: int,
    group_size: int = 1000,
    seed: int | None = 0,
    ks: Sequence[int] = (1, 5, 10),
    drop_remainder: bool = True,
    ties: str = "pessimistic",
    progress: bool = True,
) -> dict:
    """CodeSearchNet-protocol MRR and Recall@K for any scorer (embeddings, BM25, a cross-encoder).

    Args:
        score_fn: ``score_fn(query_indices (G,), candidate_indices (G,)) -> (G, G)`` scores, row i
            for query ``query_indices[i]``, column j for code ``candidate_indices[j]``; the protocol
            passes the same indices for both, so golds are on the diagonal.
        num_pairs: number of pairs.
        group_size: pairs per group.
        seed: grouping shuffle seed (``None``: input order).
        ks: Recall cut-offs.
        drop_remainder: see ``codesearchnet_groups``.
        ties: "pessimistic" or "optimistic".
        progress: show a progress bar over groups.

    Returns:
        ``{"mrr", "recall@K"..., "mrr_per_group", "random": {"mrr", "recall@K"...}, "num_queries",
        "num_groups", "group_size", "num_dropped", "seed", "ties"}``; the random baseline is for a
        full group.
    """
    groups = codesearchnet_groups(num_pairs, group_size, seed, drop_remainder)
    ranks, mrr_per_group = [], []
    for group in tqdm(groups, desc="codesearchnet groups", disable=not progress or len(groups) < 2, leave=False):
        scores = torch.as_tensor(score_fn(group, group))  # (G, G)
        if scores.shape != (len(group), len(group)):
            raise ValueError(f"score_fn returned {tuple(scores.shape)}, expected ({len(group)}, {len(group)})")
        gold = torch.arange(len(group), device=scores.device)  # (G,) the diagonal
        group_ranks = ranks_of_gold(scores.float() if not scores.is_floating_point() else scores, gold, ties).cpu()
        ranks.append(group_ranks)
        mrr_per_group.append(mrr_from_ranks(group_ranks))
    all_ranks = torch.cat(ranks)  # (num_queries,)
    out: dict = {"mrr": mrr_from_ranks(all_ranks)}
    out.update({f"recall@{k}": value for k, value in recall_from_ranks(all_ranks, ks).items()})
    out.update(
        mrr_per_group=mrr_per_group,
        random=random_baseline(group_size, 1, ks),
        num_queries=len(all_ranks),
        num_groups=len(groups),
        group_size=group_size,
        num_dropped=num_pairs - len(all_ranks),
        seed=seed,
        ties=ties,
    )
    return out


def codesearchnet_mrr(
    query_emb: torch.Tensor,
    code_emb: torch.Tensor,
    group_size: int = 1000,
    seed: int | None = 0,
    ks: Sequence[int] = (1, 5, 10),
    normalize: bool = True,
    drop_remainder: bool = True,
    ties: str = "pessimistic",
) -> dict:
    """CodeSearchNet-protocol metrics for embeddings: query i's gold is code i.

    Args:
        query_emb: (Q, D) query embeddings.
        code_emb: (Q, D) code embeddings, row i the gold of query i.
        group_size: pairs per group.
        seed: grouping shuffle seed (``None``: input order).
        ks: Recall cut-offs.
        normalize: L2-normalise rows first (cosine similarity) or use raw dot products.
        drop_remainder: see ``codesearchnet_groups``.
        ties: "pessimistic" or "optimistic".

    Returns:
        The dict of ``codesearchnet_eval``.
    """
    query_emb, code_emb = torch.as_tensor(query_emb), torch.as_tensor(code_emb)
    if query_emb.ndim != 2 or query_emb.shape != code_emb.shape:
        raise ValueError(
            f"query and code embeddings must both be (Q, D), got {tuple(query_emb.shape)} and {tuple(code_emb.shape)}"
        )
    query_emb, code_emb = query_emb.float(), code_emb.float()
    if normalize:
        query_emb = torch.nn.functional.normalize(query_emb, dim=1)  # (Q, D)
        code_emb = torch.nn.functional.normalize(code_emb, dim=1)  # (Q, D)

    def dot_scores(query_indices: torch.Tensor, candidate_indices: torch.Tensor) -> torch.Tensor:
        return query_emb[query_indices] @ code_emb[candidate_indices].T  # (G, G)

    return codesearchnet_eval(dot_scores, len(query_emb), group_size, seed, ks, drop_remainder, ties, progress=False)
