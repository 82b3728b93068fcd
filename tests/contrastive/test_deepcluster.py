"""DeepCluster and InterCLR: k-means on real emoji features, NMI, balanced sampling, trainer rounds."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from contrastive_helpers import fixed_batch, train_on

from mmssl.checkpoint import write_latest
from mmssl.contrastive import DeepCluster, InterCLR, kmeans_assign, normalized_mutual_information
from mmssl.contrastive.augment import simclr_image_transform
from mmssl.contrastive.data import ViewDataset, encode_all, one_view, two_views
from mmssl.contrastive.deepcluster import balanced_order
from mmssl.encoders import build_tower
from mmssl.train.config import TrainConfig
from mmssl.train.trainer import Trainer


def _naive_nmi(a, b):
    n = len(a)
    ca, cb = sorted(set(a)), sorted(set(b))
    pa = {x: sum(1 for v in a if v == x) / n for x in ca}
    pb = {y: sum(1 for v in b if v == y) / n for y in cb}
    mutual = 0.0
    for x in ca:
        for y in cb:
            pxy = sum(1 for u, v in zip(a, b) if u == x and v == y) / n
            if pxy > 0:
                mutual += pxy * math.log(pxy / (pa[x] * pb[y]))
    ha = -sum(p * math.log(p) for p in pa.values())
    hb = -sum(p * math.log(p) for p in pb.values())
    return mutual / ((ha + hb) / 2)


def test_nmi_matches_a_naive_reference_and_is_label_permutation_invariant():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 200), rng.integers(0, 7, 200)
    b[:120] = a[:120]  # partly the same partition
    assert normalized_mutual_information(a, b) == pytest.approx(_naive_nmi(list(a), list(b)), rel=1e-9)
    assert normalized_mutual_information(a, (a + 3) % 5 + 10) == pytest.approx(1.0)
    assert normalized_mutual_information(a, rng.integers(0, 5, 200)) < 0.1
    assert normalized_mutual_information(np.zeros(5, int), np.zeros(5, int)) == 1.0
    with pytest.raises(ValueError, match="same length"):
        normalized_mutual_information(a, b[:10])


@pytest.fixture(scope="module")
def emoji_features(emoji_images):
    torch.manual_seed(0)
    tower = build_tower("resnet-tiny-64")
    dataset = ViewDataset(emoji_images[0], one_view(tower.transform(train=False)))
    return encode_all(tower, dataset)  # (96, 256)


def test_kmeans_on_real_emoji_features_keeps_most_clusters_nonempty(emoji_features):
    k = 16
    assignment = kmeans_assign(emoji_features, k, pca_dim=32, seed=0)
    sizes = np.bincount(assignment, minlength=k)
    assert assignment.shape == (96,) and (sizes > 0).sum() >= k // 2
    assert sizes.max() <= 96 // 2  # no single cluster swallows the data
    again = kmeans_assign(emoji_features, k, pca_dim=32, seed=0)
    assert normalized_mutual_information(assignment, again) == pytest.approx(1.0)  # seeded: deterministic
    with pytest.raises(ValueError, match="num_clusters"):
        kmeans_assign(emoji_features, 97)


def test_balanced_order_draws_uniformly_over_nonempty_clusters():
    assignment = torch.tensor([0] * 60 + [1] * 6 + [3] * 2)  # cluster 2 is empty
    order = balanced_order(assignment, 4, torch.Generator().manual_seed(0))
    counts = torch.bincount(assignment[order], minlength=4)
    assert len(order) == 68 and counts[2] == 0
    assert counts[[0, 1, 3]].min() >= 68 // 3 - 1 and counts.max() <= math.ceil(68 / 3)
    assert set(order[assignment[order] == 3].tolist()) == {66, 67}  # the small cluster is oversampled


def test_deepcluster_rounds_in_the_trainer_log_sizes_nmi_and_rebalance(emoji_images, tmp_path):
    torch.manual_seed(0)
    tower = build_tower("resnet-tiny-64")
    dataset = ViewDataset(emoji_images[0][:48], one_view(simclr_image_transform(64, tower.mean, tower.std)))
    method = DeepCluster(tower, num_samples=48, num_clusters=8, recluster_every=3, pca_dim=16)
    config = TrainConfig(run_dir=str(tmp_path / "dc"), max_steps=4, batch_size=8, warmup_steps=1, log_every=1,
                         checkpoint_every=100, progress=False, device="cpu")
    head_before = method.head.weight.clone()
    Trainer(config, method, dataset, kind="contrastive/deepcluster").fit()
    rounds = [json.loads(line) for line in (tmp_path / "dc" / "clusters.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rounds] == [0, 3] and [r["round"] for r in rounds] == [0, 1]
    assert rounds[0]["nmi_previous"] is None and 0.0 <= rounds[1]["nmi_previous"] <= 1.0
    assert sum(rounds[1]["sizes"]) == 48 and rounds[1]["nonempty"] >= 4
    assert not torch.equal(method.head.weight, head_before)
    assert dataset.index_map is not None and torch.equal(dataset.index_map, method.sample_order)
    rows = [json.loads(line) for line in (tmp_path / "dc" / "metrics.jsonl").read_text().splitlines()]
    assert all({"clusters_nonempty", "embedding_std_mean", "pseudo_label_accuracy"} <= set(r) for r in rows)
    assert int(method.round) == 1


def test_deepcluster_loss_falls_on_a_fixed_batch_and_needs_labels(emoji_images):
    torch.manual_seed(0)
    tower = build_tower("resnet-tiny-64")
    dataset = ViewDataset(emoji_images[0][:32], one_view(tower.transform(train=False)))
    method = DeepCluster(tower, num_samples=32, num_clusters=4, pca_dim=8)
    with pytest.raises(RuntimeError, match="no pseudo-labels"):
        method.loss({"view1": torch.zeros(2, 3, 64, 64), "index": torch.tensor([0, 1])})
    method.cluster(dataset)
    batch = fixed_batch(emoji_images[0][:16], one_view(tower.transform(train=True)))
    losses = train_on(method, batch, steps=12)
    assert losses[-1] < 0.5 * losses[0]


def test_interclr_fills_its_bank_and_adds_cluster_neighbour_positives(emoji_images, tmp_path):
    torch.manual_seed(0)
    tower = build_tower("resnet-tiny-64")
    dataset = ViewDataset(emoji_images[0][:40], two_views(simclr_image_transform(64, tower.mean, tower.std)))
    method = InterCLR(tower, num_samples=40, num_clusters=5, recluster_every=2, projection_dim=16, hidden_dim=32,
                      num_negatives=16)
    config = TrainConfig(run_dir=str(tmp_path / "ic"), max_steps=3, batch_size=8, warmup_steps=1, log_every=1,
                         checkpoint_every=100, progress=False, device="cpu")
    Trainer(config, method, dataset, kind="contrastive/interclr").fit()
    rows = [json.loads(line) for line in (tmp_path / "ic" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["inter_loss"] > 0 and r["intra_loss"] > 0 for r in rows)
    assert torch.allclose(method.bank.norm(dim=1), torch.ones(40), atol=1e-5)
    rounds = (tmp_path / "ic" / "clusters.jsonl").read_text().splitlines()
    assert len(rounds) == 2  # steps 0 and 2
    neighbours = method._cluster_neighbours(torch.arange(40))
    assert torch.equal(method.assignment[neighbours], method.assignment)  # positives share the cluster


def test_deepcluster_resumes_with_its_pseudo_labels_and_ends_at_the_same_weights(emoji_images, tmp_path):
    def run(max_steps, resume, folder):
        torch.manual_seed(0)
        tower = build_tower("resnet-tiny-64")
        dataset = ViewDataset(emoji_images[0][:24], one_view(simclr_image_transform(64, tower.mean, tower.std)))
        method = DeepCluster(tower, num_samples=24, num_clusters=4, recluster_every=2, pca_dim=8)
        config = TrainConfig(run_dir=str(tmp_path / folder), max_steps=max_steps, batch_size=6, warmup_steps=1,
                             checkpoint_every=2, log_every=1, progress=False, device="cpu", resume=resume)
        Trainer(config, method, dataset, kind="contrastive/deepcluster").fit()
        return method

    straight = run(3, False, "straight")
    # an interrupted run: only the straight run's step-2 checkpoint (clustered at step 0, due again at step 2)
    shutil.copytree(tmp_path / "straight" / "checkpoints" / "step_0000002",
                    tmp_path / "interrupted" / "checkpoints" / "step_0000002")
    write_latest(tmp_path / "interrupted" / "checkpoints", "step_0000002")
    resumed = run(3, True, "interrupted")
    assert torch.equal(resumed.assignment, straight.assignment)
    assert torch.equal(resumed.sample_order, straight.sample_order)
    for key, value in straight.state_dict().items():
        assert torch.allclose(resumed.state_dict()[key].float(), value.float(), atol=1e-6), key
