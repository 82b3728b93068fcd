"""A deterministic, resumable, shardable sampler, and a dataset wrapper that seeds each sample.

Exact resume needs two things a plain ``DataLoader(shuffle=True)`` does not give: the order of
epoch ``e`` must be a pure function of ``(seed, e)`` so we can restart in the middle of it, and any
randomness in loading (augmentations) must not depend on how many samples a worker happened to
load before. :class:`ResumableSampler` gives the first; :class:`SeededSamples` the second, by
seeding the RNGs from ``(seed, epoch, index)`` before each ``__getitem__``.
"""

from __future__ import annotations

import random
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class ResumableSampler(Sampler):
    """Yields ``(epoch, index)`` forever, epoch by epoch, starting at a given sample position.

    Each epoch is a permutation of ``range(n)`` from ``torch.Generator().manual_seed(seed + epoch)``;
    under ``world_size > 1`` it is padded to a multiple of ``world_size`` and rank ``r`` takes every
    ``world_size``-th index from ``r`` (as ``DistributedSampler`` does). ``start`` is the number of
    samples this rank already consumed, so ``start = step * batch * accum`` resumes mid-epoch.
    """

    def __init__(self, n: int, seed: int = 0, start: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True):
        if n <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.n, self.seed, self.start, self.rank, self.world_size, self.shuffle = n, seed, start, rank, world_size, shuffle
        self.per_rank = -(-n // world_size)  # ceil: samples per rank per epoch

    def _epoch_indices(self, epoch: int) -> torch.Tensor:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))
        else:
            order = torch.arange(self.n)
        return self._shard(order)

    def _shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's share of an epoch's (n,) order, padded to a multiple of ``world_size``."""
        pad = self.per_rank * self.world_size - self.n
        if pad:
            order = torch.cat([order, order[:pad]])
        return order[self.rank::self.world_size]  # (per_rank,)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, offset = divmod(self.start, self.per_rank)
        while True:
            for i in self._epoch_indices(epoch)[offset:].tolist():
                yield epoch, i
            epoch, offset = epoch + 1, 0


class SeededSamples(Dataset):
    """Wraps a map-style dataset; item ``(epoch, i)`` is ``dataset[i]`` under RNGs seeded by (seed, epoch, i)."""

    def __init__(self, dataset, seed: int = 0):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, i = key
        s = (self.seed * 1_000_003 + epoch * 10_007 + i) % 2**63
        # Fork so that loading in the main process (num_workers=0) leaves the training RNG
        # stream (dropout, ...) untouched.
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            random.seed(s)
            np.random.seed(s % 2**32)
            try:
                return self.dataset[i]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


class GroupedSampler(ResumableSampler):
    """A :class:`ResumableSampler` whose batches come from few groups (hard in-batch negatives).

    ``groups[i]`` names sample ``i``'s group (a code function's package/module). Each epoch shuffles
    every group, cuts it into chunks of ``batch_size // groups_per_batch`` samples, and shuffles the
    chunks (all from ``seed + epoch``), so ``batch_size`` consecutive samples span about
    ``groups_per_batch`` groups: the other functions of a module are the negatives a contrastive
    loss must beat, instead of random ones from unrelated packages. Still a permutation of
    ``range(n)`` per epoch, so resume and sharding work as in the parent.
    """

    def __init__(self, groups: list[str], batch_size: int, groups_per_batch: int, seed: int = 0, start: int = 0,
                 rank: int = 0, world_size: int = 1):
        if not 1 <= groups_per_batch <= batch_size:
            raise ValueError(f"groups_per_batch must be in 1..batch_size ({batch_size}), got {groups_per_batch}")
        super().__init__(len(groups), seed, start, rank, world_size, shuffle=True)
        self.chunk = batch_size // groups_per_batch
        members: dict[str, list[int]] = {}
        for i, group in enumerate(groups):
            members.setdefault(group, []).append(i)
        self.members = [torch.tensor(m) for _, m in sorted(members.items())]

    def _epoch_indices(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        chunks = []
        for member in self.members:
            shuffled = member[torch.randperm(len(member), generator=generator)]
            chunks += list(shuffled.split(self.chunk))
        order = torch.cat([chunks[j] for j in torch.randperm(len(chunks), generator=generator).tolist()])  # (n,)
        return self._shard(order)


def parse_shares(specs: list[str]) -> dict[str, float]:
    """``["emoji=0.15", "clipart=0.1"]`` -> ``{"emoji": 0.15, "clipart": 0.1}``, checked: each share in (0, 1],
    together at most 1."""
    shares: dict[str, float] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            share = float(value) if sep and name else float("nan")
        except ValueError:
            share = float("nan")
        if not 0 < share <= 1:
            raise ValueError(f"train.source_shares: {spec!r} is not NAME=SHARE with a share in (0, 1], "
                             "e.g. --train.source-shares emoji=0.15,clipart=0.1")
        shares[name] = share
    if sum(shares.values()) > 1 + 1e-9:
        raise ValueError(f"train.source_shares add up to {sum(shares.values()):.3f} > 1: {specs}; lower them")
    return shares


def source_counts(sources: list[str], shares: dict[str, float], n: int) -> dict[str, int]:
    """Samples of each source in an epoch of ``n``: a listed source gets ``share * n``, the unlisted ones split
    the rest in proportion to their size (rounded so the counts add up to ``n``)."""
    sizes: dict[str, int] = {}
    for source in sources:
        sizes[source] = sizes.get(source, 0) + 1
    unknown = set(shares) - set(sizes)
    if unknown:
        raise ValueError(f"train.source_shares names {sorted(unknown)}, which the dataset lacks; "
                         f"its sources: {sorted(sizes)}")
    rest = [s for s in sizes if s not in shares]
    if not rest and abs(sum(shares.values()) - 1) > 1e-9:
        raise ValueError(f"train.source_shares cover every source but add up to {sum(shares.values()):.3f}, not 1")
    left = 1 - sum(shares.values())
    rest_size = sum(sizes[s] for s in rest)
    exact = {s: n * (shares[s] if s in shares else left * sizes[s] / rest_size) for s in sizes}
    counts = {s: int(v) for s, v in exact.items()}
    for s in sorted(exact, key=lambda s: exact[s] - counts[s], reverse=True)[:n - sum(counts.values())]:
        counts[s] += 1  # largest remainders first
    return counts


class SourceShareSampler(ResumableSampler):
    """A :class:`ResumableSampler` whose epochs hold each source (corpus) in a fixed share.

    ``sources[i]`` names sample ``i``'s source. An epoch is still ``n = len(sources)`` samples, but source
    ``s`` fills :func:`source_counts` of them: its samples in a fresh permutation, cycled as often as the
    count needs (a small corpus given a large share repeats, a large one given a small share is cut),
    then all of them shuffled together (from ``seed + epoch``). So each batch holds about ``share * batch``
    samples of each listed source, and resume and sharding work as in the parent.
    """

    def __init__(self, sources: list[str], shares: dict[str, float], seed: int = 0, start: int = 0, rank: int = 0,
                 world_size: int = 1):
        super().__init__(len(sources), seed, start, rank, world_size, shuffle=True)
        self.counts = source_counts(sources, shares, len(sources))
        members: dict[str, list[int]] = {}
        for i, source in enumerate(sources):
            members.setdefault(source, []).append(i)
        self.members = {s: torch.tensor(m) for s, m in sorted(members.items())}

    def _epoch_indices(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        parts = []
        for source, member in self.members.items():
            count = self.counts[source]
            if count == 0:  # a share that rounds to no sample in an epoch
                continue
            rounds = -(-count // len(member))
            cycled = torch.cat([member[torch.randperm(len(member), generator=generator)] for _ in range(rounds)])
            parts.append(cycled[:count])
        order = torch.cat(parts)  # (n,)
        return self._shard(order[torch.randperm(len(order), generator=generator)])
