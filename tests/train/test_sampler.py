import itertools
import random

import numpy as np
import pytest
import torch

from mmssl.train.sampler import GroupedSampler, ResumableSampler, SeededSamples


def take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_order_is_a_function_of_seed_and_epoch():
    a, b = take(ResumableSampler(10, seed=3), 30), take(ResumableSampler(10, seed=3), 30)
    assert a == b
    assert [e for e, _ in a] == [0] * 10 + [1] * 10 + [2] * 10
    for epoch in range(3):  # each epoch is a permutation
        assert sorted(i for e, i in a if e == epoch) == list(range(10))
    assert [i for _, i in a[:10]] != [i for _, i in a[10:20]]
    assert take(ResumableSampler(10, seed=4), 10) != a[:10]


def test_start_continues_the_same_stream():
    full = take(ResumableSampler(7, seed=1), 40)
    for start in (0, 3, 7, 13):
        assert take(ResumableSampler(7, seed=1, start=start), 40 - start) == full[start:]


def test_ranks_partition_each_epoch():
    shards = [take(ResumableSampler(10, seed=0, rank=r, world_size=3), 4) for r in range(3)]
    seen = sorted(i for shard in shards for _, i in shard)
    assert len(seen) == 12 and set(seen) == set(range(10))  # padded to 12 by repeating 2 indices


class Noisy(torch.utils.data.Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return torch.rand(()).item(), random.random(), np.random.rand()


def test_seeded_samples_depend_only_on_key_and_keep_the_global_rng():
    ds = SeededSamples(Noisy(), seed=0)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    first = ds[(0, 2)]
    after = torch.rand(3)
    assert torch.equal(before, after)  # loading did not consume the training RNG
    assert ds[(0, 2)] == first and ds[(1, 2)] != first and ds[(0, 3)] != first


def _grouped(groups, **kw):
    return GroupedSampler(groups, batch_size=8, groups_per_batch=2, **kw)


def test_grouped_batches_span_groups_per_batch_groups_and_epochs_are_permutations():
    groups = [f"module{i % 6}" for i in range(48)]  # 6 modules of 8 functions: 2 chunks of 4 each
    sampler = _grouped(groups, seed=3)
    draws = list(itertools.islice(iter(sampler), 96))  # two epochs
    for epoch in (0, 1):
        indices = [i for e, i in draws if e == epoch]
        assert sorted(indices) == list(range(48))
        for b in range(0, 48, 8):
            assert len({groups[i] for i in indices[b:b + 8]}) <= 2
    assert [i for e, i in draws if e == 0] != [i for e, i in draws if e == 1]
    plain = list(itertools.islice(iter(ResumableSampler(48, seed=3)), 48))
    assert max(len({groups[i] for _, i in plain[b:b + 8]}) for b in range(0, 48, 8)) > 2  # what it improves on


def test_grouped_sampler_resumes_and_shards_like_the_plain_one():
    groups = [f"m{i % 5}" for i in range(37)]
    full = list(itertools.islice(iter(_grouped(groups, seed=1)), 60))
    assert list(itertools.islice(iter(_grouped(groups, seed=1, start=23)), 37)) == full[23:60]
    ranks = [list(itertools.islice(iter(_grouped(groups, seed=1, rank=r, world_size=2)), 19)) for r in (0, 1)]
    assert {i for r in ranks for _, i in r} == set(range(37))  # 2 x 19 = 37 + 1 pad
    with pytest.raises(ValueError, match="groups_per_batch"):
        GroupedSampler(groups, batch_size=4, groups_per_batch=5)


# -- fixed shares of each source (corpus) ------------------------------------------------------------------------

SOURCES = ["emoji"] * 30 + ["clipart"] * 20 + ["iconsets"] * 900 + ["emoji-artworks"] * 50  # n = 1000


def test_source_shares_hold_in_every_epoch_and_on_average_in_each_batch():
    from mmssl.train.sampler import SourceShareSampler

    sampler = SourceShareSampler(SOURCES, {"emoji": 0.15, "clipart": 0.1}, seed=0)
    drawn = take(sampler, 3000)  # three epochs
    for epoch in range(3):
        names = [SOURCES[i] for e, i in drawn if e == epoch]
        assert len(names) == 1000
        # listed: their share; unlisted: the remaining 0.75 by size (900:50)
        assert {s: names.count(s) for s in set(names)} == {"emoji": 150, "clipart": 100, "iconsets": 711,
                                                          "emoji-artworks": 39}
    first_epoch = [i for e, i in drawn if e == 0]
    emoji_drawn = [i for i in first_epoch if SOURCES[i] == "emoji"]
    assert sorted(set(emoji_drawn)) == list(range(30))  # every emoji sample, each 5 times
    assert all(emoji_drawn.count(i) == 5 for i in range(30))
    batches = [[SOURCES[i] for _, i in drawn[b:b + 100]].count("emoji") for b in range(0, 3000, 100)]
    assert 10 <= sum(batches) / len(batches) <= 20 and max(batches) < 35  # shuffled together, not in blocks
    assert take(SourceShareSampler(SOURCES, {"emoji": 0.15, "clipart": 0.1}, seed=0, start=1234), 500) == drawn[1234:1734]
    assert take(SourceShareSampler(SOURCES, {"emoji": 0.15, "clipart": 0.1}, seed=1), 1000) != drawn[:1000]


def test_a_source_whose_share_rounds_to_nothing_is_left_out_of_the_epoch():
    from mmssl.train.sampler import SourceShareSampler

    sampler = SourceShareSampler(["a"] * 90 + ["b"] * 10, {"a": 0.999})  # b's 0.1 of a sample rounds to 0
    assert sampler.counts == {"a": 100, "b": 0}
    drawn = [i for _, i in take(sampler, 100)]  # one epoch
    assert len(drawn) == 100 and max(drawn) < 90 and len(set(drawn)) == 90


def test_source_counts_add_up_and_bad_shares_are_refused():
    from mmssl.train.sampler import parse_shares, source_counts

    assert parse_shares(["emoji=0.15", "clipart=0.1"]) == {"emoji": 0.15, "clipart": 0.1}
    counts = source_counts(SOURCES[:997], {"emoji": 1 / 3}, 997)
    assert sum(counts.values()) == 997 and counts["emoji"] in (332, 333)
    for bad in (["emoji"], ["emoji=0"], ["emoji=1.5"], ["=0.2"], ["emoji=x"], ["emoji=0.6", "clipart=0.5"]):
        with pytest.raises(ValueError, match="source_shares"):
            parse_shares(bad)
    with pytest.raises(ValueError, match="stamps"):
        source_counts(SOURCES, {"stamps": 0.1}, 1000)
    with pytest.raises(ValueError, match="add up to"):
        source_counts(["a", "b"], {"a": 0.5, "b": 0.3}, 2)
