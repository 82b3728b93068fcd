"""Shared pieces of the contrastive tests: a fixed batch of real views and a few optimizer steps on it."""

import torch
from PIL import Image

from mmssl.contrastive.data import ViewCollator


def fixed_batch(items, make_views, tokenize=None, labels=None):
    """One collated batch of views made once (so the loss is comparable step to step)."""
    samples = []
    for i, item in enumerate(items):
        raw = Image.fromarray(item) if not isinstance(item, str) else item
        sample = {"index": i, **make_views(raw)}
        if labels is not None:
            sample["label"] = int(labels[i])
        samples.append(sample)
    return ViewCollator(tokenize)(samples)


def train_on(method, batch, steps=20, lr=2e-3):
    """Adam steps on one batch; returns the losses before each step."""
    optimizer = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=lr)
    method.train()
    losses = []
    for _ in range(steps):
        loss, logs = method.loss(batch)
        assert torch.isfinite(loss)
        assert all(isinstance(v, float) for v in logs.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
