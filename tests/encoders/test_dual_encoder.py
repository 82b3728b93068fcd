"""DualEncoder: shapes, logit scale, learning on real pairs, precomputed features, save/load."""

import json
import math

import pytest
import torch

from mmssl.checkpoint import CheckpointError
from mmssl.encoders import (DualEncoder, DualEncoderConfig, TowerConfig, build_dual_encoder, build_tower,
                            load_dual_encoder, save_dual_encoder)
from mmssl.losses import symmetric_info_nce_loss


def _code_config(**item) -> DualEncoderConfig:
    return DualEncoderConfig(query=TowerConfig(name="nbow", width=64, dropout=0.0, max_length=32),
                             item=TowerConfig(**{"name": "self-attention", "width": 64, "layers": 1, "dropout": 0.0,
                                                 "max_length": 64, **item}),
                             embed_dim=32)


def _batch(model: DualEncoder, pairs):
    return {"query": model.query_tower.tokenize([q for q, _ in pairs]),
            "item": model.item_tower.tokenize([c for _, c in pairs])}


def test_shapes_scale_and_loss(code_tokenizer, stdlib_pairs):
    model = build_dual_encoder(_code_config(), code_tokenizer, code_tokenizer)
    batch = _batch(model, stdlib_pairs[:8])
    queries, items, scale = model(batch["query"], batch["item"])
    assert queries.shape == items.shape == (8, 32)
    assert torch.allclose(queries.norm(dim=1), torch.ones(8)) and torch.allclose(items.norm(dim=1), torch.ones(8))
    assert math.isclose(float(scale.detach()), 1 / 0.07, rel_tol=1e-5)
    torch.manual_seed(0)
    model.eval()
    loss, logs = model.loss(batch)
    expected = symmetric_info_nce_loss(queries, items, 1 / scale)
    assert torch.allclose(loss, expected, atol=1e-6)
    assert set(logs) == {"logit_scale", "accuracy"} and 0 <= logs["accuracy"] <= 1
    with torch.no_grad():
        model.contrastive_loss.log_logit_scale.fill_(10.0)
    assert float(model.logit_scale.detach()) == pytest.approx(100.0)  # clamped


def test_training_on_stdlib_pairs_learns(code_tokenizer, stdlib_pairs):
    torch.manual_seed(0)
    pairs = stdlib_pairs[:32]
    model = build_dual_encoder(_code_config(), code_tokenizer, code_tokenizer)
    batch = _batch(model, pairs)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(25):
        loss, logs = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        final_loss, logs = model.loss(batch)
    assert losses[0] > math.log(32) - 0.5  # starts near chance
    assert final_loss.item() < 0.2 * losses[0]
    assert logs["accuracy"] > 0.9  # chance: 1/32


def test_precomputed_features_equal_the_locked_tower(code_tokenizer, stdlib_pairs):
    config = DualEncoderConfig(query=TowerConfig(name="minilm", pretrained="minilm", locked=True),
                               item=TowerConfig(name="nbow", width=64), embed_dim=32)
    model = build_dual_encoder(config, item_tokenizer=code_tokenizer).eval()
    pairs = stdlib_pairs[:6]
    batch = _batch(model, pairs)
    features = model.query_tower.encode([q for q, _ in pairs])  # (6, 384), computed once
    loss_raw, _ = model.loss(batch)
    loss_cached, _ = model.loss({"query_features": features, "item": batch["item"]})
    assert torch.allclose(loss_raw, loss_cached, atol=1e-6)
    model.train()
    loss, _ = model.loss({"query_features": features, "item": batch["item"]})
    loss.backward()
    assert model.query_projection.weight.grad is not None
    with pytest.raises(ValueError, match="has shape"):
        model.loss({"query_features": features[:, :10], "item": batch["item"]})
    with pytest.raises(ValueError, match="never train"):
        model.loss({"query": batch["query"], "item_features": torch.zeros(6, 64)})


def test_save_load_gives_identical_outputs(code_tokenizer, stdlib_pairs, tmp_path):
    model = build_dual_encoder(_code_config(pooling="attention"), code_tokenizer, code_tokenizer)
    with torch.no_grad():
        model.contrastive_loss.log_logit_scale.fill_(3.0)
    folder = save_dual_encoder(model, tmp_path / "code-model")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "item_tokenizer.json", "model.safetensors",
                                                        "query_tokenizer.json"]
    loaded = load_dual_encoder(folder)
    model.eval()
    queries = [q for q, _ in stdlib_pairs[:5]]
    code = [c for _, c in stdlib_pairs[:5]]
    assert torch.equal(model.embed_queries(queries), loaded.embed_queries(queries))
    assert torch.equal(model.embed_items(code), loaded.embed_items(code))
    assert float(loaded.logit_scale.detach()) == pytest.approx(math.exp(3.0))
    save_dual_encoder(loaded, folder)  # overwriting in place works


def test_locked_minilm_is_not_saved(tmp_path):
    config = DualEncoderConfig(item=TowerConfig(name="resnet-tiny-64"), embed_dim=16)  # default query: locked MiniLM
    model = build_dual_encoder(config).eval()
    folder = save_dual_encoder(model, tmp_path / "clip-model")
    assert (folder / "model.safetensors").stat().st_size < 10_000_000  # MiniLM alone is 90 MB
    loaded = load_dual_encoder(folder)
    assert loaded.query_tower.locked
    texts = ["a red fire truck", "sleepy face"]
    assert torch.allclose(model.embed_queries(texts), loaded.embed_queries(texts), atol=1e-6)
    from PIL import Image

    images = [Image.new("RGB", (128, 128), (255, 0, 0))]
    assert torch.equal(model.embed_items(images), loaded.embed_items(images))


def test_load_rejects_other_folders(tmp_path):
    with pytest.raises(CheckpointError, match="no dual encoder at"):
        load_dual_encoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "mae", "model": {}}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="holds a 'mae' model, not a 'dual_encoder'"):
        load_dual_encoder(tmp_path)


def test_load_rejects_weights_that_do_not_fit(code_tokenizer, tmp_path):
    model = build_dual_encoder(_code_config(), code_tokenizer, code_tokenizer)
    folder = save_dual_encoder(model, tmp_path / "m")
    meta = json.loads((folder / "config.json").read_text())
    meta["model"]["embed_dim"] = 48
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not fit its config.json"):
        load_dual_encoder(folder)


def test_towers_are_interchangeable(code_tokenizer):
    tower = build_tower("bigru", tokenizer=code_tokenizer, width=32, layers=1)
    model = DualEncoder(tower, build_tower("clip-text-tiny", max_length=16), embed_dim=8)
    q = model.encode_query(tower.tokenize(["split a string"]))
    i = model.encode_item(model.item_tower.tokenize(["str.split"]))
    assert q.shape == i.shape == (1, 8)


def test_config_reads_from_flags_and_files():
    import argparse

    from mmssl.config import add_config_args, from_dict, resolve_config, to_dict

    parser = argparse.ArgumentParser()
    add_config_args(parser, DualEncoderConfig)
    args = parser.parse_args(["--item.name", "cnn", "--item.max-length", "256", "--query.locked", "false"])
    config = resolve_config(DualEncoderConfig, args)
    assert config.item == TowerConfig(name="cnn", max_length=256)
    assert config.query.name == "minilm" and config.query.pretrained == "minilm" and not config.query.locked
    assert from_dict(DualEncoderConfig, to_dict(config)) == config


def test_hard_negative_items_enter_the_query_direction_of_the_loss(code_tokenizer, stdlib_pairs):
    from mmssl.data.pairs import PairCollator

    torch.manual_seed(0)
    model = build_dual_encoder(_code_config(), code_tokenizer, code_tokenizer).eval()
    pairs = stdlib_pairs[:6]
    negatives = [c for _, c in pairs[1:] + pairs[:1]]  # each pair's negative: the next function
    batch = PairCollator(model.query_tower.tokenize, model.item_tower.tokenize)(
        [{"query": q, "item": c, "negative_item": n} for (q, c), n in zip(pairs, negatives)])
    loss, logs = model.loss(batch)
    queries, items = model.encode_query(batch["query"]), model.encode_item(batch["item"])
    expected = symmetric_info_nce_loss(queries, items, 1 / model.logit_scale,
                                       second_negatives=model.encode_item(batch["negative_item"]))
    torch.testing.assert_close(loss, expected)
    assert loss > model.loss({"query": batch["query"], "item": batch["item"]})[0]
    assert set(logs) == {"logit_scale", "accuracy", "negative_accuracy"} and 0 <= logs["negative_accuracy"] <= 1
