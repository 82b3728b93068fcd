import argparse
import json
from dataclasses import dataclass, field

import pytest

from mmssl.config import ConfigError, add_config_args, from_dict, resolve_config, save_config
from mmssl.train.config import TrainConfig


@dataclass
class Tower:
    name: str = "vit-tiny"
    dim: int = 64
    locked: bool = False


@dataclass
class Run:
    tower: Tower = field(default_factory=Tower)
    lr: float = 1e-3
    tags: list[str] = field(default_factory=list)
    limit: int | None = None


def parse(argv, cls=Run):
    parser = argparse.ArgumentParser()
    add_config_args(parser, cls)
    return parser.parse_args(argv)


def test_precedence_defaults_file_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("lr: 0.01\ntower:\n  dim: 128\n  name: resnet\n")
    cfg = resolve_config(Run, parse(["--config", str(path), "--tower.dim", "256", "--tags", "a,b", "--limit", "5"]))
    assert cfg == Run(tower=Tower(name="resnet", dim=256), lr=0.01, tags=["a", "b"], limit=5)


def test_json_file_and_bool_and_none(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"tower": {"locked": "true"}, "limit": None}))
    cfg = resolve_config(Run, parse(["--config", str(path)]))
    assert cfg.tower.locked is True and cfg.limit is None


def test_saved_config_round_trips(tmp_path):
    cfg = TrainConfig(lr=3e-4, betas=(0.9, 0.95), precision="bf16")
    save_config(cfg, tmp_path / "config.json")
    assert from_dict(TrainConfig, json.loads((tmp_path / "config.json").read_text())) == cfg


@pytest.mark.parametrize("data,match", [
    ({"lrr": 1}, "unknown field.*lrr"),
    ({"lr": "fast"}, "lr: cannot read 'fast' as float"),
    ({"tower": {"dim": 1.5}}, "tower.dim"),
    ({"tower": 3}, "expected a mapping"),
])
def test_bad_config_is_a_clear_error(data, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(Run, data)


def test_literal_choices_are_checked():
    with pytest.raises(ConfigError, match="'fp8' is not one of"):
        from_dict(TrainConfig, {"precision": "fp8"})
