"""StateCache: frozen-part token states on disk, exact, resumable, and what a training batch is made of."""

import pytest
import torch

from mmssl.data.pairs import CodePairs, PairCollator, pad_states
from mmssl.encoders import build_tower
from mmssl.encoders.cache import StateCache

CODES = ["def add(a, b):\n    return a + b", "x = 1", "class A:\n    pass\n" * 20, "def f():\n    return 'é ü'"]


@pytest.fixture(scope="module")
def tower():
    return build_tower("minilm", pretrained="minilm", max_length=64, frozen_layers=5).eval()


def test_cached_states_equal_the_frozen_part(tower, tmp_path):
    cache = StateCache(tower, tmp_path)
    cache.ensure(CODES + CODES[:1], progress=False)
    assert len(cache) == len(CODES)
    for code in CODES:
        states, mask = tower.frozen_states(tower.tokenize([code]))
        cached = cache.states(code)
        assert cached.dtype == torch.float16 and cached.shape == (int(mask.sum()), 384)
        assert torch.allclose(cached.float(), states[0, :int(mask.sum())], atol=2e-2, rtol=1e-2)
    reopened = StateCache(tower, tmp_path)  # read back from disk
    assert len(reopened) == len(CODES) and torch.equal(reopened.states(CODES[2]), cache.states(CODES[2]))
    with pytest.raises(KeyError, match="ensure"):
        cache.states("never seen")


def test_interrupted_chunk_is_recomputed(tower, tmp_path):
    cache = StateCache(tower, tmp_path)
    cache.ensure(CODES[:2], progress=False)
    with open(cache.folder / "states.f16", "ab") as f:
        f.write(b"\x00" * 1000)  # bytes of a chunk whose index was never written
    resumed = StateCache(tower, tmp_path)
    assert len(resumed) == 2
    resumed.ensure(CODES, progress=False)
    fresh = StateCache(tower, tmp_path / "fresh")
    fresh.ensure(CODES, progress=False)
    for code in CODES:  # equal up to float16 rounding (batches pad to other lengths)
        assert torch.allclose(resumed.states(code).float(), fresh.states(code).float(), atol=1e-2)


def test_batch_from_states_gives_the_full_forward(tower, tmp_path):
    cache = StateCache(tower, tmp_path)
    cache.ensure(CODES, progress=False)
    pairs = CodePairs(["d"] * len(CODES), CODES, torch.zeros(len(CODES), 384), item_states=cache)
    batch = PairCollator()([pairs[i] for i in range(len(CODES))])
    assert batch["item_states"].shape[:2] == batch["item_states_mask"].shape
    from_states = tower.forward_from_states(batch["item_states"], batch["item_states_mask"])
    assert torch.allclose(from_states, tower.encode(CODES), atol=1e-2)


def test_pad_states_masks_the_padding():
    padded, mask = pad_states([torch.ones(2, 3), torch.ones(4, 3)])
    assert padded.shape == (2, 4, 3) and mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert padded[0, 2:].abs().sum() == 0


def test_needs_frozen_layers(tmp_path):
    with pytest.raises(ValueError, match="frozen layers"):
        StateCache(build_tower("minilm", pretrained="minilm", max_length=32), tmp_path)
