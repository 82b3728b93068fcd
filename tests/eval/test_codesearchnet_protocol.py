"""CodeSearchNet protocol: deterministic groups, candidates are exactly the group, metric values."""

import pytest
import torch

from mmssl.eval.codesearchnet import codesearchnet_eval, codesearchnet_groups, codesearchnet_mrr


def test_groups_are_deterministic_disjoint_and_drop_the_remainder():
    groups = codesearchnet_groups(2500, group_size=1000, seed=0)
    again = codesearchnet_groups(2500, group_size=1000, seed=0)
    assert len(groups) == 2 and all(len(g) == 1000 for g in groups)
    assert all(torch.equal(a, b) for a, b in zip(groups, again))
    flat = torch.cat(groups)
    assert len(set(flat.tolist())) == 2000 and int(flat.min()) >= 0 and int(flat.max()) < 2500
    other_seed = codesearchnet_groups(2500, group_size=1000, seed=1)
    assert not torch.equal(groups[0], other_seed[0])
    # The grouping is pinned (numpy PCG64 permutation): a change here silently changes every
    # reported MRR, so it must be deliberate.
    assert groups[0][:5].tolist() == [1861, 799, 68, 458, 1476]
    assert codesearchnet_groups(10, 5, 0)[0].tolist() == [4, 6, 2, 7, 3]


def test_groups_unshuffled_and_kept_remainder():
    groups = codesearchnet_groups(25, group_size=10, seed=None, drop_remainder=False)
    assert [g.tolist() for g in groups] == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    with pytest.raises(ValueError, match="do not fill"):
        codesearchnet_groups(999, group_size=1000)


def test_each_query_is_scored_against_exactly_its_group():
    seen = []

    def score_fn(query_indices, candidate_indices):
        seen.append((query_indices.clone(), candidate_indices.clone()))
        return torch.zeros(len(query_indices), len(candidate_indices))

    result = codesearchnet_eval(score_fn, 35, group_size=10, seed=3, progress=False)
    groups = codesearchnet_groups(35, group_size=10, seed=3)
    assert len(seen) == len(groups) == 3
    for (queries, candidates), group in zip(seen, groups):
        assert torch.equal(queries, group) and torch.equal(candidates, group)
    assert result["num_queries"] == 30 and result["num_dropped"] == 5 and result["num_groups"] == 3
    # Constant scores: every gold ties with all distractors, pessimistic rank 10.
    assert result["mrr"] == pytest.approx(1 / 10)


def test_embedding_protocol_equals_per_group_loop():
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(250, 16, generator=generator)
    code = queries + 1.5 * torch.randn(250, 16, generator=generator)
    result = codesearchnet_mrr(queries, code, group_size=100, seed=0)
    reciprocal = []
    for group in codesearchnet_groups(250, 100, 0):
        q = torch.nn.functional.normalize(queries[group], dim=1)
        c = torch.nn.functional.normalize(code[group], dim=1)
        for i in range(len(group)):
            row = (q[i] @ c.T).tolist()
            reciprocal.append(1 / (1 + sum(s >= row[i] for j, s in enumerate(row) if j != i)))
    assert result["mrr"] == pytest.approx(sum(reciprocal) / len(reciprocal), abs=1e-9)
    assert result["num_queries"] == 200
    assert result["random"]["mrr"] == pytest.approx(sum(1 / i for i in range(1, 101)) / 100)
    assert result["mrr"] > 5 * result["random"]["mrr"]
    assert result["mrr"] == pytest.approx(sum(result["mrr_per_group"]) / 2)


def test_perfect_embeddings_score_one():
    embeddings = torch.eye(40)
    result = codesearchnet_mrr(embeddings, embeddings * 3, group_size=20)
    assert result["mrr"] == 1.0 and result["recall@1"] == 1.0


def test_score_fn_shape_is_checked():
    with pytest.raises(ValueError, match="score_fn returned"):
        codesearchnet_eval(lambda q, c: torch.zeros(len(q), 3), 20, group_size=10, progress=False)
