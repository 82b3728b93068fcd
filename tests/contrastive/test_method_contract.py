"""Every registered method trains in the Trainer and its checkpoint initialises a tower (the contract),
and the recipe runs end to end from the command line on a tiny real code corpus."""

import json

import pytest
import torch

from mmssl.checkpoint import CheckpointError
from mmssl.cli import main
from mmssl.contrastive import METHODS, ContrastiveConfig, build_method, view_kind
from mmssl.contrastive.data import ViewCollator, ViewDataset
from mmssl.encoders import TowerConfig, build_tower
from mmssl.encoders.tower import load_encoder_weights
from mmssl.recipes.contrastive import ContrastiveRun, make_views
from mmssl.train.config import TrainConfig
from mmssl.train.trainer import Trainer


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_trains_and_its_checkpoint_initialises_a_tower(name, emoji_images, tmp_path):
    images, categories = emoji_images
    classes = sorted(set(categories))
    torch.manual_seed(0)
    config = TowerConfig(name="resnet-tiny-64")
    encoder = build_tower(config)
    options = ContrastiveConfig(num_clusters=4, recluster_every=2, pca_dim=8, queue_size=16, num_negatives=8,
                                projection_dim=16, hidden_dim=32, loss="triplet", mining="all")
    run = ContrastiveRun(method=name, options=options)
    labels = torch.tensor([classes.index(c) for c in categories[:24]]) if view_kind(name) == "labelled" else None
    dataset = ViewDataset(images[:24], make_views(view_kind(name), run, encoder), labels)
    method = build_method(name, encoder, options, num_samples=len(dataset), make_tower=lambda: build_tower(config))
    assert method.encoder is encoder
    train = TrainConfig(run_dir=str(tmp_path / name), max_steps=2, batch_size=8, warmup_steps=1, log_every=1,
                        checkpoint_every=100, progress=False, device="cpu")
    Trainer(train, method, dataset, collate_fn=ViewCollator(), extra_config={"encoder": config},
            kind=f"contrastive/{name}").fit()
    rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all("embedding_std_mean" in r and "collapsed" in r for r in rows)
    tower = build_tower(config, pretrained=str(tmp_path / name))
    own = method.encoder.state_dict()
    assert tower.state_dict().keys() == own.keys()
    assert all(torch.equal(tower.state_dict()[k], own[k]) for k in own)
    with pytest.raises(CheckpointError, match="not a 'vit-tiny-64' tower"):
        load_encoder_weights(build_tower("vit-tiny-64"), tmp_path / name)


def _write_code_corpus(root, records):
    from mmssl.data.corpus import write_splits

    for r in records:
        r["split"] = "train"
    write_splits(records, root / "corpora" / "code")


def test_cli_pretrains_a_code_tower_that_a_dual_encoder_tower_loads(stdlib_functions, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMSSL_DATA_DIR", str(tmp_path / "data"))
    _write_code_corpus(tmp_path / "data", [dict(r) for r in stdlib_functions])
    run_dir = tmp_path / "run"
    code = main(["contrastive", "simclr", "--modality", "code", "--corpora", "code", "--encoder.name", "nbow",
                 "--encoder.width", "32", "--encoder.max-length", "64", "--tokenizer-vocab-size", "1000",
                 "--train.run-dir", str(run_dir), "--train.max-steps", "3", "--train.batch-size", "16",
                 "--train.warmup-steps", "1", "--train.log-every", "1", "--train.progress", "false",
                 "--train.device", "cpu"])
    assert code == 0 and "pretrained encoder in" in capsys.readouterr().out
    assert (run_dir / "tokenizer.json").is_file()
    state = json.loads(next((run_dir / "checkpoints").glob("step_*/state.json")).read_text())
    assert state["kind"] == "contrastive/simclr" and state["extra_config"]["encoder"]["name"] == "nbow"
    tower = build_tower(TowerConfig(name="nbow", width=32, max_length=64, pretrained=str(run_dir)))  # finds the tokenizer
    assert tower.encode(["def add(a, b):\n    return a + b"]).shape == (1, 32)
    code = main(["contrastive", "simclr", "--modality", "image", "--corpora", "code", "--encoder.name", "nbow",
                 "--train.run-dir", str(tmp_path / "bad")])
    assert code == 1 and "does not encode image items" in capsys.readouterr().err
