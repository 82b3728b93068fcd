"""Initialising a tower from an mmssl pretext/contrastive checkpoint (its ``encoder.*`` weights)."""

import pytest
import torch
from torch import nn

from mmssl.checkpoint import CheckpointError, save_checkpoint, write_latest
from mmssl.encoders import build_tower, save_code_tokenizer


class _Method(nn.Module):
    """What a pretext method looks like to us: the tower at ``.encoder`` plus its own head."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.output_dim, 3)


def _save_run(run_dir, method, kind="mlm", encoder_name=None):
    extra = {"encoder": {"name": encoder_name}} if encoder_name else {}
    state = {"kind": kind, "step": 1, "extra_config": extra}
    folder = save_checkpoint(run_dir / "checkpoints" / "step_0000001", method.state_dict(), None, state)
    write_latest(run_dir / "checkpoints", "step_0000001")
    return folder


def test_tower_starts_from_checkpoint_encoder(code_tokenizer, tmp_path):
    pretrained = build_tower("cnn", tokenizer=code_tokenizer, width=64, layers=1)
    save_code_tokenizer(code_tokenizer, tmp_path / "run" / "tokenizer.json")
    folder = _save_run(tmp_path / "run", _Method(pretrained), encoder_name="cnn")
    # a run folder (latest checkpoint), a checkpoint folder, the weights file: all accepted; the
    # tokenizer is found beside the run
    for path in (tmp_path / "run", folder, folder / "model.safetensors"):
        tower = build_tower("cnn", pretrained=str(path), width=64, layers=1, locked=True)
        for name, tensor in pretrained.state_dict().items():
            assert torch.equal(tower.state_dict()[name], tensor), name
        assert tower.locked


def test_wrong_checkpoints_raise_clear_errors(code_tokenizer, tmp_path):
    _save_run(tmp_path / "cnn_run", _Method(build_tower("cnn", tokenizer=code_tokenizer, width=64, layers=1)))
    with pytest.raises(CheckpointError, match=r"does not fit a 'cnn' tower.*shape mismatch"):
        build_tower("cnn", tokenizer=code_tokenizer, pretrained=str(tmp_path / "cnn_run"), width=32, layers=1)
    with pytest.raises(CheckpointError, match=r"does not fit a 'nbow' tower.*unexpected"):
        build_tower("nbow", tokenizer=code_tokenizer, pretrained=str(tmp_path / "cnn_run"), width=64)

    _save_run(tmp_path / "named", _Method(build_tower("nbow", tokenizer=code_tokenizer)), encoder_name="nbow")
    with pytest.raises(CheckpointError, match="holds a 'nbow' encoder"):
        build_tower("self-attention", tokenizer=code_tokenizer, pretrained=str(tmp_path / "named"))

    no_encoder = nn.Sequential(nn.Linear(2, 2))
    _save_run(tmp_path / "other", no_encoder, kind="simclr")
    with pytest.raises(CheckpointError, match=r"\(simclr checkpoint\) has no 'encoder\.\*' tensors"):
        build_tower("vit-tiny-64", pretrained=str(tmp_path / "other"))

    with pytest.raises(CheckpointError, match="no mmssl checkpoint at"):
        build_tower("vit-tiny-64", pretrained=str(tmp_path / "nowhere"))


def test_build_tower_knows_the_pretext_towers_without_the_pretext_package():
    """``build_tower``/``load_dual_encoder`` meet ``wavenet``, ``gpt``… in a fresh interpreter."""
    import subprocess
    import sys

    script = ("import sys\nfrom mmssl.encoders import build_tower, takes_code_tokenizer\n"
              "assert 'mmssl.pretext' not in sys.modules\n"
              "tower = build_tower('wavenet')\n"
              "print(type(tower).__name__, takes_code_tokenizer('gpt'), takes_code_tokenizer('wavenet'))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["True", "False"], out.stdout


def test_keep_code_tokenizer_copies_the_checkpoint_vocabulary(code_tokenizer, tmp_path):
    from mmssl.encoders import TowerConfig, load_code_tokenizer
    from mmssl.encoders.code import keep_code_tokenizer

    save_code_tokenizer(code_tokenizer, tmp_path / "run" / "tokenizer.json")
    _save_run(tmp_path / "run", _Method(build_tower("nbow", tokenizer=code_tokenizer)), encoder_name="nbow")
    config = TowerConfig(name="nbow", pretrained=str(tmp_path / "run"))
    assert keep_code_tokenizer(config, tmp_path / "next")
    assert load_code_tokenizer(tmp_path / "next" / "tokenizer.json").get_vocab() == code_tokenizer.get_vocab()
    assert keep_code_tokenizer(config, tmp_path / "run")  # already there: left as it is
    assert not keep_code_tokenizer(TowerConfig(name="nbow"), tmp_path / "none")
    assert not (tmp_path / "none").exists()
