import itertools
import random

import numpy as np
import torch

from mmssl.train.sampler import ResumableSampler, SeededSamples


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
