"""Retrieval metrics against naive Python-loop references, hand cases and random baselines."""

import math

import pytest
import torch

from mmssl.eval.metrics import (
    mean_reciprocal_rank,
    ndcg_at_k,
    random_baseline,
    ranks_of_gold,
    recall_at_k,
    retrieval_metrics,
)


# ---- naive references: one query at a time, sort a Python list -------------------------------------

def naive_order(row, relevant, ties):
    """Candidate indices best first; ties put distractors first (pessimistic) or golds first."""
    gold_first = ties == "optimistic"
    return sorted(range(len(row)), key=lambda j: (-row[j], (not relevant[j]) if gold_first else relevant[j]))


def naive_rank(row, relevant, ties):
    order = naive_order(row, relevant, ties)
    return next(position for position, j in enumerate(order, start=1) if relevant[j])


def naive_ndcg(row, relevant, k, ties):
    order = naive_order(row, relevant, ties)
    dcg = sum(1 / math.log2(p + 1) for p, j in enumerate(order[:k], start=1) if relevant[j])
    ideal = sum(1 / math.log2(p + 1) for p in range(1, min(k, sum(relevant)) + 1))
    return dcg / ideal


def as_relevance(gold, num_candidates):
    if gold.dtype == torch.bool:
        return gold.tolist()
    return [[j == g for j in range(num_candidates)] for g in gold.tolist()]


def random_case(kind, seed, num_queries=37, num_candidates=23):
    generator = torch.Generator().manual_seed(seed)
    # Scores from a few levels make many ties, including golds tied with distractors.
    scores = torch.randint(0, 4, (num_queries, num_candidates), generator=generator).float()
    if kind == "single":
        gold = torch.randint(0, num_candidates, (num_queries,), generator=generator)
    else:
        gold = torch.rand(num_queries, num_candidates, generator=generator) < 0.15
        gold[torch.arange(num_queries), torch.randint(0, num_candidates, (num_queries,), generator=generator)] = True
    return scores, gold


CASES = [(kind, seed) for kind in ("single", "multi") for seed in range(3)]


@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
@pytest.mark.parametrize("kind,seed", CASES)
def test_metrics_equal_naive_loop(kind, seed, ties):
    scores, gold = random_case(kind, seed)
    relevance = as_relevance(gold, scores.shape[1])
    rows = scores.tolist()
    expected_ranks = [naive_rank(r, rel, ties) for r, rel in zip(rows, relevance)]
    # max_elements=50 forces chunks of 2 queries, exercising the chunk loop.
    ranks = ranks_of_gold(scores, gold, ties, max_elements=50)
    assert ranks.tolist() == expected_ranks
    expected_mrr = sum(1 / r for r in expected_ranks) / len(expected_ranks)
    assert mean_reciprocal_rank(scores, gold, ties) == pytest.approx(expected_mrr, abs=1e-12)
    recalls = recall_at_k(scores, gold, (1, 3, 10), ties)
    for k in (1, 3, 10):
        assert recalls[k] == pytest.approx(sum(r <= k for r in expected_ranks) / len(expected_ranks), abs=1e-12)
    for k in (1, 5, 30):
        expected_ndcg = sum(naive_ndcg(r, rel, k, ties) for r, rel in zip(rows, relevance)) / len(rows)
        assert ndcg_at_k(scores, gold, k, ties, max_elements=50) == pytest.approx(expected_ndcg, abs=1e-9)


def test_continuous_scores_match_naive_and_ties_do_not_matter():
    scores = torch.randn(50, 40)
    gold = torch.randint(0, 40, (50,))
    relevance = as_relevance(gold, 40)
    expected = [naive_rank(r, rel, "pessimistic") for r, rel in zip(scores.tolist(), relevance)]
    assert ranks_of_gold(scores, gold).tolist() == expected
    assert ranks_of_gold(scores, gold, "optimistic").tolist() == expected


def test_hand_cases():
    scores = torch.tensor([[0.9, 0.1, 0.2, 0.3], [0.9, 0.8, 0.7, 0.1]])
    gold = torch.tensor([0, 3])  # first query: gold first; second: gold last of 4
    assert ranks_of_gold(scores, gold).tolist() == [1, 4]
    assert mean_reciprocal_rank(scores[:1], gold[:1]) == 1.0
    assert mean_reciprocal_rank(scores[1:], gold[1:]) == pytest.approx(1 / 4)
    assert recall_at_k(scores, gold, (1, 3, 4)) == {1: 0.5, 3: 0.5, 4: 1.0}
    # NDCG@4 of gold at position 4: 1 / log2(5).
    assert ndcg_at_k(scores[1:], gold[1:], k=4) == pytest.approx(1 / math.log2(5))
    assert ndcg_at_k(scores[1:], gold[1:], k=3) == 0.0


def test_constant_scores_get_the_worst_rank_not_the_best():
    scores = torch.zeros(3, 10)
    gold = torch.tensor([0, 5, 9])
    assert ranks_of_gold(scores, gold).tolist() == [10, 10, 10]
    assert ranks_of_gold(scores, gold, "optimistic").tolist() == [1, 1, 1]
    assert recall_at_k(scores, gold, (1,))[1] == 0.0


def test_several_golds_rank_of_best_gold():
    scores = torch.tensor([[0.5, 0.9, 0.7, 0.7, 0.1]])
    relevant = torch.tensor([[True, False, True, False, True]])
    # best gold 0.7 is behind 0.9 and tied with one distractor (pessimistic: behind it too)
    assert ranks_of_gold(scores, relevant).tolist() == [3]
    assert ranks_of_gold(scores, relevant, "optimistic").tolist() == [2]
    # pessimistic order: 0.9(d) 0.7(d) 0.7(g) 0.5(g) 0.1(g) -> golds at 3, 4, 5
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    expected = (1 / math.log2(4) + 1 / math.log2(5) + 1 / math.log2(6)) / ideal
    assert ndcg_at_k(scores, relevant, k=5) == pytest.approx(expected)


def test_retrieval_metrics_bundle():
    scores, gold = random_case("multi", 7)
    bundle = retrieval_metrics(scores, gold, (1, 5))
    assert bundle["mrr"] == mean_reciprocal_rank(scores, gold)
    assert bundle["recall@5"] == recall_at_k(scores, gold, (5,))[5]


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="no relevant"):
        ranks_of_gold(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="lie in"):
        ranks_of_gold(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="NaN"):
        ranks_of_gold(torch.tensor([[0.0, float("nan")]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="ties"):
        ranks_of_gold(torch.zeros(1, 3), torch.tensor([0]), ties="average")


def test_random_baseline_analytic_single_gold():
    n = 1000
    baseline = random_baseline(n)
    harmonic = sum(1 / i for i in range(1, n + 1))
    assert baseline["mrr"] == pytest.approx(harmonic / n, rel=1e-9)
    for k in (1, 5, 10):
        assert baseline[f"recall@{k}"] == pytest.approx(k / n, rel=1e-9)
    assert baseline["ndcg@10"] == pytest.approx(sum(1 / math.log2(p + 1) for p in range(1, 11)) / n, rel=1e-9)


def test_random_baseline_several_golds_by_enumeration():
    # N = 6, R = 2: enumerate all C(6, 2) gold positions.
    from itertools import combinations

    positions = list(combinations(range(1, 7), 2))
    expected_mrr = sum(1 / min(p) for p in positions) / len(positions)
    expected_r2 = sum(min(p) <= 2 for p in positions) / len(positions)
    baseline = random_baseline(6, 2, ks=(2,), ndcg_k=3)
    assert baseline["mrr"] == pytest.approx(expected_mrr)
    assert baseline["recall@2"] == pytest.approx(expected_r2)
    ideal = 1 + 1 / math.log2(3)
    expected_ndcg = sum(sum(1 / math.log2(q + 1) for q in p if q <= 3) for p in positions) / len(positions) / ideal
    assert baseline["ndcg@3"] == pytest.approx(expected_ndcg)


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_random_scores_match_random_baseline(kind):
    generator = torch.Generator().manual_seed(1)
    num_queries, num_candidates = 20000, 50
    scores = torch.rand(num_queries, num_candidates, generator=generator)
    if kind == "single":
        gold = torch.randint(0, num_candidates, (num_queries,), generator=generator)
        baseline = random_baseline(num_candidates)
    else:
        gold = torch.rand(num_queries, num_candidates, generator=generator) < 0.05
        gold[:, 0] = True
        baseline = random_baseline(num_candidates, gold.sum(dim=1))
    measured = retrieval_metrics(scores, gold, (1, 5, 10))
    measured["ndcg@10"] = ndcg_at_k(scores, gold, 10)
    for name, value in baseline.items():
        assert measured[name] == pytest.approx(value, abs=0.01), name
