"""SimCLR and its MoCo-queue variant on real emoji views; the collapse monitor."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from contrastive_helpers import fixed_batch, train_on

from mmssl.contrastive import RepresentationCollapseWarning, SimCLR, collapse_logs
from mmssl.contrastive.augment import simclr_image_transform
from mmssl.contrastive.data import two_views
from mmssl.encoders import build_tower


@pytest.fixture(scope="module")
def tower_and_batch(emoji_images):
    torch.manual_seed(0)
    tower = build_tower("resnet-tiny-64")
    augment = simclr_image_transform(tower.image_size, tower.mean, tower.std)
    return tower, fixed_batch(emoji_images[0][:12], two_views(augment))


def test_simclr_loss_falls_on_real_emoji_views(tower_and_batch):
    tower, batch = tower_and_batch
    torch.manual_seed(0)
    method = SimCLR(build_tower("resnet-tiny-64"), projection_dim=32, hidden_dim=64, temperature=0.2)
    losses = train_on(method, batch, steps=8)
    assert losses[0] > 0.8 * math.log(23)  # near chance at init (2N - 1 = 23 candidates)
    assert losses[-1] < 0.6 * losses[0]


def test_moco_queue_gives_the_naive_infonce_and_the_key_encoder_follows_by_ema(tower_and_batch):
    tower, batch = tower_and_batch
    torch.manual_seed(0)
    method = SimCLR(build_tower("resnet-tiny-64"), projection_dim=16, hidden_dim=0, temperature=0.5,
                    queue_size=40, momentum=0.9)
    method.train()
    optimizer = torch.optim.SGD(method.parameters(), lr=0.5)
    for _ in range(2):  # fills the queue with 2 x 12 keys; the first loss is NT-Xent
        loss, logs = method.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert len(method.queue) == 24 and logs["queue_fill"] == pytest.approx(24 / 40)
    key_before = method.key_head.weight.clone()
    queue = method.queue.negatives().clone()  # (24, P)
    loss, _ = method.loss(batch)
    expected_key = 0.9 * key_before + 0.1 * method.head.weight
    assert torch.allclose(method.key_head.weight, expected_key, atol=1e-6)
    with torch.no_grad():  # naive reference: one softmax per query, positive first
        queries = [method.embed(batch["view1"]), method.embed(batch["view2"])]
        keys = [F.normalize(method.key_head(method.key_encoder(batch[v])), dim=1) for v in ("view2", "view1")]
        total = 0.0
        for q, k in zip(queries, keys):
            for i in range(q.shape[0]):
                logits = torch.cat([(q[i] @ k[i]).view(1), queue @ q[i]]) / 0.5
                total += float(-torch.log_softmax(logits, 0)[0]) / q.shape[0]
    assert loss.item() == pytest.approx(total / 2, rel=1e-4)


def test_collapse_monitor_flags_a_collapsed_batch_and_passes_a_spread_one():
    torch.manual_seed(0)
    spread = collapse_logs(torch.randn(512, 64))
    assert spread["embedding_std_mean"] == pytest.approx(1.0, abs=0.05) and spread["collapsed"] == 0.0
    collapsed_batch = torch.ones(32, 64) + 1e-4 * torch.randn(32, 64)
    with pytest.warns(RepresentationCollapseWarning, match="collapse"):
        logs = collapse_logs(collapsed_batch)
    assert logs["collapsed"] == 1.0 and logs["embedding_std_mean"] < 0.01
    low_rank = torch.randn(256, 2) @ torch.randn(2, 64)  # spread in 2 of 64 directions
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logs = collapse_logs(low_rank)
    assert logs["embedding_std_min"] < logs["embedding_std_mean"] < 1.0
    with pytest.raises(ValueError, match="B >= 2"):
        collapse_logs(torch.randn(1, 8))
