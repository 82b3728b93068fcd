"""The trainer's scaling options: channels-last memory format, torch.compile, and their checks."""

import functools
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mmssl.checkpoint import latest_checkpoint, load_checkpoint
from mmssl.train.config import TrainConfig
from mmssl.train.trainer import Trainer, seed_everything, use_channels_last

sys.path.insert(0, str(Path(__file__).parent))
from tiny_run import make_trainer  # noqa: E402


class Crops(torch.utils.data.Dataset):
    """Random 16x16 crops (an RNG-driven augmentation) of 4 fixed 24x24 images, labelled by image."""

    def __init__(self):
        self.images = torch.randn(4, 3, 24, 24, generator=torch.Generator().manual_seed(3))

    def __len__(self):
        return 64

    def __getitem__(self, i):
        y, x = torch.randint(0, 9, (2,)).tolist()
        return self.images[i % 4, :, y:y + 16, x:x + 16], i % 4


class ConvClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3),
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2))
        self.head = nn.Linear(8, 4)

    def loss(self, batch):
        images, labels = batch
        return F.cross_entropy(self.head(self.encoder(images)), labels), {}


def conv_trainer(run_dir, max_steps, resume=False, channels_last="on", **overrides):
    seed_everything(0)
    config = TrainConfig(run_dir=str(run_dir), max_steps=max_steps, batch_size=8, lr=1e-2, warmup_steps=1,
                         checkpoint_every=3, log_every=1, progress=False, resume=resume, device="cpu",
                         channels_last=channels_last, **overrides)
    return Trainer(config, ConvClassifier(), Crops())


def losses(run_dir):
    return [json.loads(line)["loss"] for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def test_channels_last_trains_the_same_and_auto_picks_it_for_conv_methods_on_cuda(tmp_path):
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert use_channels_last("auto", ConvClassifier(), cuda) and not use_channels_last("auto", ConvClassifier(), cpu)
    assert not use_channels_last("auto", nn.Linear(2, 2), cuda) and use_channels_last("on", nn.Linear(2, 2), cpu)
    assert not make_trainer(str(tmp_path / "bytes"), max_steps=1).channels_last
    nhwc = conv_trainer(tmp_path / "nhwc", 6)
    assert nhwc.channels_last and nhwc.method.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    nhwc.fit()
    nchw = conv_trainer(tmp_path / "nchw", 6, channels_last="off")
    assert not nchw.channels_last
    nchw.fit()
    assert losses(tmp_path / "nhwc") == pytest.approx(losses(tmp_path / "nchw"), rel=1e-4)


def test_channels_last_run_resumes_exactly(tmp_path):
    conv_trainer(tmp_path / "full", 6).fit()
    part = conv_trainer(tmp_path / "part", 6)
    calls = []

    def interrupt_at_the_fourth_step(optimizer, args, kwargs):
        calls.append(1)
        if len(calls) == 4:  # after the step-3 checkpoint
            raise KeyboardInterrupt

    part.optimizer.register_step_pre_hook(interrupt_at_the_fourth_step)
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    conv_trainer(tmp_path / "part", 6, resume=True).fit()
    full, _, _ = load_checkpoint(latest_checkpoint(tmp_path / "full" / "checkpoints"))
    resumed, _, _ = load_checkpoint(latest_checkpoint(tmp_path / "part" / "checkpoints"))
    for name in full:
        assert torch.equal(full[name], resumed[name]), name


def test_compile_wraps_the_loss_and_trains_the_same(tmp_path, monkeypatch):
    # the "eager" backend traces with dynamo but runs eager kernels: same numbers, seconds not minutes
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    compiled = make_trainer(str(tmp_path / "compiled"), max_steps=4, compile=True)
    assert isinstance(compiled.model, torch._dynamo.eval_frame.OptimizedModule)
    compiled.fit()
    make_trainer(str(tmp_path / "eager"), max_steps=4).fit()
    assert losses(tmp_path / "compiled") == losses(tmp_path / "eager")
    saved, _, _ = load_checkpoint(latest_checkpoint(tmp_path / "compiled" / "checkpoints"))
    assert not any("_orig_mod" in name for name in saved)  # checkpoints hold the method's own names


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="grad_cache_chunk must be 0"):
        make_trainer(str(tmp_path / "a"), max_steps=1, grad_cache_chunk=-1)
    with pytest.raises(TypeError, match="gradient caching needs a two-tower method"):
        make_trainer(str(tmp_path / "b"), max_steps=1, grad_cache_chunk=4)
