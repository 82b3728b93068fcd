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
