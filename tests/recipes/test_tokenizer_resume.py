"""A resumed code run reads the vocabulary its checkpoints were trained with instead of training a new one
(HF tokenizers' WordPiece trainer gives a different vocabulary in each process, tokenizers #1794)."""

import dataclasses
import json

import pytest

from mmssl.encoders import DualEncoderConfig, TowerConfig
from mmssl.encoders import tokenizer as tokenizer_module
from mmssl.recipes.dual_encoder import DualEncoderRun, train_dual_encoder
from mmssl.train.config import TrainConfig


@pytest.fixture(scope="module")
def code_data(tmp_path_factory):
    from mmssl.data import code

    root = tmp_path_factory.mktemp("data")
    code.build(root / "corpora" / "code", limit=200, include_wheels=False)
    return root


def vocab(path) -> dict:
    return json.loads(path.read_text())["model"]["vocab"]


def test_a_resumed_code_run_keeps_its_saved_vocabulary(code_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MMSSL_DATA_DIR", str(code_data))
    run_dir = tmp_path / "run"
    run = DualEncoderRun(
        task="code", corpora=["code"], output=str(tmp_path / "model"), evaluate=False, tokenizer_vocab_size=800,
        model=DualEncoderConfig(query=TowerConfig(name="nbow", max_length=32),
                                item=TowerConfig(name="nbow", max_length=64), embed_dim=32),
        train=TrainConfig(run_dir=str(run_dir), max_steps=2, batch_size=16, lr=1e-3, warmup_steps=1,
                          checkpoint_every=2, log_every=1, progress=False))
    first = train_dual_encoder(run, command=["test"])
    saved = vocab(run_dir / "tokenizer.json")
    assert saved == vocab(first / "item_tokenizer.json") and len(saved) > 100

    def retrain(*args, **kwargs):
        raise AssertionError("a resumed run trained a new tokenizer")

    monkeypatch.setattr(tokenizer_module, "train_code_tokenizer", retrain)
    resumed = dataclasses.replace(run, output=str(tmp_path / "resumed"),
                                  train=dataclasses.replace(run.train, max_steps=4, resume=True))
    folder = train_dual_encoder(resumed, command=["test"])
    assert vocab(folder / "item_tokenizer.json") == vocab(folder / "query_tokenizer.json") == saved
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 4  # it went on from the step-2 checkpoint


def test_a_fresh_run_trains_and_saves_a_new_vocabulary(tmp_path):
    texts = ["def add(a, b):\n    return a + b", "sum of two numbers"] * 20
    trained = tokenizer_module.run_code_tokenizer(tmp_path / "run", False, lambda: texts, 200)
    assert vocab(tmp_path / "run" / "tokenizer.json") == trained.get_vocab()
    # resume=True with no saved file trains one too (a run interrupted before its first save)
    again = tokenizer_module.run_code_tokenizer(tmp_path / "other", True, lambda: texts, 200)
    assert (tmp_path / "other" / "tokenizer.json").is_file() and again.token_to_id("add") is not None
