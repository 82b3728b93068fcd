"""The dual-encoder recipes end to end on tiny real corpora: emoji images and stdlib code."""

import json

import pytest
import torch

from mmssl.encoders import DualEncoderConfig, TowerConfig, load_dual_encoder
from mmssl.recipes.dual_encoder import DualEncoderRun, train_dual_encoder
from mmssl.train.config import TrainConfig


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data root with a 60-emoji corpus and a 600-function stdlib code corpus."""
    from mmssl.data import code, emoji

    root = tmp_path_factory.mktemp("data")
    emoji.fetch()  # idempotent; the sources live in the project's data root
    emoji.build(root / "corpora" / "emoji", limit=60)
    code.build(root / "corpora" / "code", limit=600, include_wheels=False)
    return root


def metrics_rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_image_text_recipe_trains_saves_and_beats_chance(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MMSSL_DATA_DIR", str(data_dir))
    run = DualEncoderRun(
        task="image-text", corpora=["emoji"], output=str(tmp_path / "model"), evaluate=False,
        model=DualEncoderConfig(query=TowerConfig(name="minilm", pretrained="minilm", locked=True),
                                item=TowerConfig(name="resnet-tiny-64", hflip=False), embed_dim=64),
        train=TrainConfig(run_dir=str(tmp_path / "run"), max_steps=40, batch_size=32, lr=2e-3, warmup_steps=5,
                          checkpoint_every=40, log_every=5, progress=False))
    folder = train_dual_encoder(run, command=["test"])
    rows = metrics_rows(tmp_path / "run")
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.5, (rows[0]["loss"], rows[-1]["loss"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["train_pairs"] > 60 and manifest["corpora"] == ["emoji"] and len(manifest["data_hash"]) == 16
    # the locked MiniLM is not copied into the release folder
    assert (folder / "model.safetensors").stat().st_size < 10_000_000
    model = load_dual_encoder(folder)
    from mmssl.data.corpus import load_corpus
    from mmssl.data.imageio import open_image

    train = load_corpus("emoji", "train").select(range(32))
    with torch.inference_mode():
        texts = model.embed_queries(train["text"])  # (32, E)
        images = model.embed_items([open_image(p) for p in train["image"]])  # (32, E)
    top1 = (texts @ images.T).argmax(1).eq(torch.arange(32)).float().mean().item()
    assert top1 > 3 / 32, top1  # chance is 1/32


def test_code_recipe_with_trainable_query_tower(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MMSSL_DATA_DIR", str(data_dir))
    run = DualEncoderRun(
        task="code", corpora=["code"], output=str(tmp_path / "model"), evaluate=False, tokenizer_vocab_size=2000,
        model=DualEncoderConfig(query=TowerConfig(name="nbow", max_length=32), item=TowerConfig(name="nbow", max_length=128),
                                embed_dim=64),
        train=TrainConfig(run_dir=str(tmp_path / "run"), max_steps=60, batch_size=64, lr=3e-3, warmup_steps=5,
                          checkpoint_every=60, log_every=10, progress=False))
    folder = train_dual_encoder(run, command=["test"])
    rows = metrics_rows(tmp_path / "run")
    assert rows[-1]["loss"] < rows[0]["loss"] - 1.0
    assert rows[-1]["accuracy"] > 0.2  # in-batch top-1 of 64: chance is 1/64
    assert (folder / "query_tokenizer.json").exists() and (folder / "item_tokenizer.json").exists()
    assert json.loads((folder / "manifest.json").read_text())["task"] == "code"


def test_code_recipe_keeps_the_vocabulary_of_a_pretrained_tower(data_dir, tmp_path, monkeypatch):
    """A tower from a pretext checkpoint keeps the tokenizer its weights were trained with; only the
    tower without one gets the recipe's newly trained vocabulary."""
    from torch import nn

    from mmssl.encoders import build_tower, save_code_tokenizer, train_code_tokenizer
    from mmssl.checkpoint import save_checkpoint, write_latest

    monkeypatch.setenv("MMSSL_DATA_DIR", str(data_dir))
    pretext_vocab = train_code_tokenizer(["def add(a, b):\n    return a + b", "sum of two numbers"] * 50,
                                         vocab_size=300)
    method = nn.Module()
    method.encoder = build_tower("nbow", tokenizer=pretext_vocab, max_length=64, width=32)
    run_dir = tmp_path / "pretext"
    save_code_tokenizer(pretext_vocab, run_dir / "tokenizer.json")
    save_checkpoint(run_dir / "checkpoints" / "step_0000001", method.state_dict(), None,
                    {"kind": "mlm", "step": 1, "extra_config": {"encoder": {"name": "nbow"}}})
    write_latest(run_dir / "checkpoints", "step_0000001")

    run = DualEncoderRun(
        task="code", corpora=["code"], output=str(tmp_path / "model"), evaluate=False, tokenizer_vocab_size=2000,
        model=DualEncoderConfig(query=TowerConfig(name="nbow", max_length=32, width=32),
                                item=TowerConfig(name="nbow", max_length=64, width=32, pretrained=str(run_dir)),
                                embed_dim=16),
        train=TrainConfig(run_dir=str(tmp_path / "run"), max_steps=2, batch_size=16, warmup_steps=1,
                          checkpoint_every=2, progress=False))
    model = load_dual_encoder(train_dual_encoder(run, command=["test"]))
    assert model.item_tower.tokenizer.get_vocab() == pretext_vocab.get_vocab()
    assert model.query_tower.tokenizer.get_vocab_size() > pretext_vocab.get_vocab_size()  # the recipe's own


def test_code_recipe_on_several_query_views_and_the_full_index_text(data_dir, tmp_path, monkeypatch):
    from mmssl.data.code_text import index_text
    from mmssl.encoders import build_dual_encoder
    from mmssl.recipes.dual_encoder import _code_tokenizer, build_training_set, train_records

    monkeypatch.setenv("MMSSL_DATA_DIR", str(data_dir))
    run = DualEncoderRun(
        task="code", corpora=["code"], output=str(tmp_path / "model"), evaluate=False, tokenizer_vocab_size=2000,
        query_views=["docstring", "name"], item_text="full",
        model=DualEncoderConfig(query=TowerConfig(name="nbow", max_length=32), item=TowerConfig(name="nbow", max_length=128),
                                embed_dim=64),
        train=TrainConfig(run_dir=str(tmp_path / "run"), max_steps=40, batch_size=64, lr=3e-3, warmup_steps=5,
                          checkpoint_every=40, log_every=10, progress=False))
    records = train_records(run)
    tokenizer = _code_tokenizer(run, records)
    dataset, _, _ = build_training_set(run, build_dual_encoder(run.model, tokenizer, tokenizer), records)
    assert len(dataset) == 2 * len(records)  # every function has a docstring and a name
    assert dataset.codes[0] == dataset.codes[1] == index_text(records[0], "full")
    assert dataset.docstrings[0] == records[0]["docstring"] and "_" not in dataset.docstrings[1]
    train_dual_encoder(run, command=["test"])
    rows = metrics_rows(tmp_path / "run")
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.5


def test_code_subset_seed_samples_the_whole_split_in_corpus_order(data_dir, monkeypatch):
    from mmssl.data.corpus import load_corpus
    from mmssl.recipes.dual_encoder import train_records

    monkeypatch.setenv("MMSSL_DATA_DIR", str(data_dir))
    every = load_corpus("code", "train").to_list()
    first = train_records(DualEncoderRun(task="code", corpora=["code"], limit=10))
    sampled = train_records(DualEncoderRun(task="code", corpora=["code"], limit=10, subset_seed=0))
    assert first == every[:10] and len(sampled) == 10
    positions = [every.index(r) for r in sampled]
    assert positions == sorted(positions) and positions[-1] >= 10  # not the first rows
    assert sampled == train_records(DualEncoderRun(task="code", corpora=["code"], limit=10, subset_seed=0))
    assert sampled != train_records(DualEncoderRun(task="code", corpora=["code"], limit=10, subset_seed=1))
