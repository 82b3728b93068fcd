"""GradCache equals one big batch: real code towers (NBoW with dropout) on real stdlib pairs, float64."""

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from mmssl.encoders import DualEncoderConfig, TowerConfig, build_dual_encoder, train_code_tokenizer
from mmssl.train import gradcache
from mmssl.train.config import TrainConfig
from mmssl.train.gradcache import GradCache, split_batch
from mmssl.train.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parents[1]))
from tiny_models import stdlib_pairs  # noqa: E402

BATCH, CHUNK = 32, 8  # chunk size B/4


@pytest.fixture(scope="module")
def pairs_and_tokenizer():
    pairs = stdlib_pairs(limit=120)
    tokenizer = train_code_tokenizer([text for pair in pairs for text in pair], vocab_size=800)
    return pairs, tokenizer


def code_model(tokenizer, dropout=0.3, query_locked=False, pooling="attention"):
    torch.manual_seed(0)
    config = DualEncoderConfig(query=TowerConfig(name="nbow", width=24, max_length=32, dropout=dropout,
                                                 locked=query_locked),
                               item=TowerConfig(name="nbow", width=24, max_length=96, dropout=dropout, pooling=pooling),
                               embed_dim=16, init_temperature=0.2)
    return build_dual_encoder(config, tokenizer, tokenizer).double()


def code_batch(model, pairs, features=False):
    docstrings, codes = zip(*pairs[:BATCH])
    batch = {"item": model.item_tower.tokenize(list(codes))}
    if features:
        batch["query_features"] = model.query_tower.encode(list(docstrings)).double()  # (B, Dq), locked tower
    else:
        batch["query"] = model.query_tower.tokenize(list(docstrings))
    return batch


def gradients(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def assert_same_gradients(got, want, rtol=1e-9, atol=1e-12):
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=rtol, atol=atol, msg=name)


def one_big_batch_with_chunked_dropout(model, batch):
    """Reference: embed chunk by chunk *with* the graph (the same RNG draws as GradCache's first pass),
    one loss on the whole batch, one backward."""
    model.zero_grad()
    queries, items = [], []
    for chunk in split_batch(batch, CHUNK):
        queries.append(model.embed_side(chunk, "query"))
        items.append(model.embed_side(chunk, "item"))
    loss, _ = model.loss_from_embeddings(torch.cat(queries), torch.cat(items))
    loss.backward()
    return loss.detach(), gradients(model)


def grad_cache_step(model, batch, chunk=CHUNK):
    model.zero_grad()
    cache = GradCache(model, chunk)
    loss, logs = cache.forward(batch)
    cache.backward(loss)
    return loss.detach(), gradients(model), logs


def test_chunks_of_a_quarter_give_the_big_batch_gradients_with_dropout_on(pairs_and_tokenizer):
    pairs, tokenizer = pairs_and_tokenizer
    model = code_model(tokenizer).train()
    batch = code_batch(model, pairs)
    torch.manual_seed(1)
    want_loss, want = one_big_batch_with_chunked_dropout(model, batch)
    after_reference = torch.get_rng_state()
    torch.manual_seed(1)
    loss, got, logs = grad_cache_step(model, batch)
    torch.testing.assert_close(loss, want_loss, rtol=1e-12, atol=0)
    assert_same_gradients(got, want)
    # every trainable parameter got its gradient, the logit scale included
    assert set(got) == {name for name, p in model.named_parameters() if p.requires_grad}
    assert "contrastive_loss.log_logit_scale" in got and 0 <= logs["accuracy"] <= 1
    # the RNG stream continues where one big batch leaves it
    assert torch.equal(torch.get_rng_state(), after_reference)


def test_without_replaying_the_rng_the_gradients_differ(pairs_and_tokenizer, monkeypatch):
    """The dropout masks of the re-run must be those of the first pass: the test above can fail."""
    pairs, tokenizer = pairs_and_tokenizer
    model = code_model(tokenizer).train()
    batch = code_batch(model, pairs)
    torch.manual_seed(1)
    _, want = one_big_batch_with_chunked_dropout(model, batch)
    monkeypatch.setattr(gradcache.RandomState, "restore", lambda self: None)
    torch.manual_seed(1)
    _, got, _ = grad_cache_step(model, batch)
    worst = max(float((got[k] - want[k]).abs().max() / want[k].abs().max()) for k in want if want[k].abs().max() > 0)
    assert worst > 1e-3, worst


@pytest.mark.parametrize("chunk", [CHUNK, 5, BATCH])  # 5: a last chunk of 2 rows
def test_without_dropout_equals_the_plain_loss_on_the_whole_batch(pairs_and_tokenizer, chunk):
    pairs, tokenizer = pairs_and_tokenizer
    model = code_model(tokenizer, dropout=0.0).train()
    batch = code_batch(model, pairs)
    model.zero_grad()
    want_loss, want_logs = model.loss(batch)
    want_loss.backward()
    want = gradients(model)
    loss, got, logs = grad_cache_step(model, batch, chunk)
    torch.testing.assert_close(loss, want_loss.detach(), rtol=1e-12, atol=0)
    assert_same_gradients(got, want)
    assert logs == want_logs


def test_precomputed_features_are_not_re_run(pairs_and_tokenizer, monkeypatch):
    """A locked query tower's features only pass through the projection: embedded once, whole batch."""
    pairs, tokenizer = pairs_and_tokenizer
    model = code_model(tokenizer, dropout=0.0, query_locked=True).train()
    batch = code_batch(model, pairs, features=True)
    model.zero_grad()
    want_loss, _ = model.loss(batch)
    want_loss.backward()
    want = gradients(model)
    assert "query_projection.weight" in want and not any(k.startswith("query_tower.") for k in want)
    calls = []
    original = model.embed_side

    def counted(chunk, side):
        calls.append((side, len(chunk["item"]["input_ids"])))
        return original(chunk, side)

    monkeypatch.setattr(model, "embed_side", counted)
    loss, got, _ = grad_cache_step(model, batch)
    assert_same_gradients(got, want)
    assert calls.count(("query", BATCH)) == 1 and not [c for c in calls if c[0] == "query" and c[1] != BATCH]
    assert calls.count(("item", CHUNK)) == 2 * BATCH // CHUNK  # first pass + re-run


def test_batch_norm_warns_and_running_stats_are_updated_once_per_chunk():
    """Ghost batch norm: chunks use their own statistics; the no-grad pass must not move the running stats."""
    torch.manual_seed(0)

    class ConvPairs(nn.Module):
        sides = ("query", "item")

        def __init__(self):
            super().__init__()
            self.item_tower = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                                            nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.query_tower = nn.Linear(6, 4)

        def embed_side(self, batch, side):
            return getattr(self, f"{side}_tower")(batch[side])

        def loss_from_embeddings(self, queries, items):
            return (queries * items).sum(1).mean(), {}

    method = ConvPairs()
    batch = {"query": torch.randn(8, 6), "item": torch.randn(8, 3, 9, 9)}
    cache = GradCache(method, 4)
    with pytest.warns(UserWarning, match="ghost batch norm"):
        loss, _ = cache.forward(batch)
    assert method.item_tower[1].num_batches_tracked.item() == 0  # restored after the no-grad pass
    cache.backward(loss)
    assert method.item_tower[1].num_batches_tracked.item() == 2  # one update per re-run chunk


def test_bad_use_is_a_clear_error(pairs_and_tokenizer):
    with pytest.raises(TypeError, match="lacks sides, embed_side, loss_from_embeddings"):
        GradCache(nn.Linear(2, 2), 4)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        GradCache(code_model(pairs_and_tokenizer[1]), 0)
    with pytest.raises(ValueError, match="leading sizes"):
        split_batch({"a": torch.zeros(4, 2), "b": torch.zeros(3)}, 2)
    cache = GradCache(code_model(pairs_and_tokenizer[1]), 4)
    with pytest.raises(RuntimeError, match="without a forward"):
        cache.backward(torch.zeros(()))


def test_trainer_with_grad_cache_matches_the_default_path(pairs_and_tokenizer, tmp_path):
    """Three optimizer steps through the Trainer: chunked and plain runs end at the same weights."""
    pairs, tokenizer = pairs_and_tokenizer
    from mmssl.data.pairs import CodePairs, PairCollator

    weights = {}
    for chunk in (0, CHUNK):
        model = code_model(tokenizer, dropout=0.0).float()
        docstrings, codes = zip(*pairs)
        dataset = CodePairs(list(docstrings), list(codes))
        config = TrainConfig(run_dir=str(tmp_path / f"run{chunk}"), max_steps=3, batch_size=BATCH, lr=1e-2,
                             warmup_steps=1, checkpoint_every=100, progress=False, grad_cache_chunk=chunk)
        trainer = Trainer(config, model, dataset, PairCollator(model.query_tower.tokenize, model.item_tower.tokenize))
        assert (trainer.grad_cache is not None) == (chunk > 0)
        trainer.fit()
        weights[chunk] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    moved = max(float((weights[0][k] - code_model(tokenizer, dropout=0.0).float().state_dict()[k]).abs().max())
                for k in weights[0])
    assert moved > 1e-3  # the runs trained
    for k in weights[0]:
        torch.testing.assert_close(weights[CHUNK][k], weights[0][k], rtol=1e-4, atol=1e-5, msg=k)
