"""A tiny but real training run for the trainer tests: a next-byte model over stdlib source.

Run as a script (the kill/resume test does): ``python tiny_run.py RUN_DIR MAX_STEPS [--resume]``.
The dataset draws a random window per sample (an augmentation using the torch RNG) and the model
uses dropout, so exact resume needs both the sampler/seeding and the RNG state to be right.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from mmssl.train.config import TrainConfig
from mmssl.train.trainer import Trainer, seed_everything

CONTEXT = 16


class StdlibBytes(torch.utils.data.Dataset):
    """Random ``CONTEXT + 1``-byte windows of a few real stdlib modules."""

    def __init__(self, n: int = 256):
        import json as json_module
        import textwrap

        text = b"".join(Path(m.__file__).read_bytes() for m in (json_module, textwrap))
        self.data = torch.frombuffer(bytearray(text), dtype=torch.uint8).long()
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        start = torch.randint(0, len(self.data) - CONTEXT - 1, ()).item()
        return self.data[start:start + CONTEXT + 1]  # (CONTEXT + 1,)


class NextByte(nn.Module):
    def __init__(self, dim: int = 32):
        super().__init__()
        self.encoder = nn.Sequential(nn.Embedding(256, dim), nn.Flatten(), nn.Dropout(0.1),
                                     nn.Linear(dim * CONTEXT, 64), nn.GELU())
        self.head = nn.Linear(64, 256)

    def loss(self, batch: torch.Tensor):
        x, y = batch[:, :-1], batch[:, -1]  # (B, CONTEXT), (B,)
        logits = self.head(self.encoder(x))  # (B, 256)
        loss = F.cross_entropy(logits, y)
        return loss, {"accuracy": (logits.argmax(-1) == y).float().mean().item()}


def make_trainer(run_dir: str, max_steps: int, resume: bool = False, **overrides) -> Trainer:
    seed_everything(0)
    cfg = TrainConfig(run_dir=run_dir, max_steps=max_steps, batch_size=16, lr=3e-3, warmup_steps=3,
                      checkpoint_every=5, log_every=1, seed=0, resume=resume, progress=False)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return Trainer(cfg, NextByte(), StdlibBytes(), kind="tiny-next-byte")


if __name__ == "__main__":
    run_dir, max_steps = sys.argv[1], int(sys.argv[2])
    delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    trainer = make_trainer(run_dir, max_steps, resume="--resume" in sys.argv)
    if delay:  # slow each step so the test can kill us mid-run
        import time

        original = trainer.method.loss

        def slow_loss(batch):
            time.sleep(delay)
            return original(batch)

        trainer.method.loss = slow_loss
    print(json.dumps(trainer.fit()))
