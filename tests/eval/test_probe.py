"""Linear probe and kNN accuracy: separable data near 100%, random labels near chance."""

import pytest
import torch
from torch.nn import functional as F

from mmssl.eval.probe import knn_accuracy, linear_probe_accuracy


def clustered(num_classes=5, per_class=80, dim=32, spread=0.3, seed=0):
    """Gaussian blobs around random unit centres, offset and scaled unevenly (like raw features)."""
    generator = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(num_classes, dim, generator=generator), dim=1)  # (C, D)
    labels = torch.arange(num_classes).repeat_interleave(per_class)  # (N,)
    features = centres[labels] + spread / dim**0.5 * torch.randn(len(labels), dim, generator=generator)
    scale = torch.rand(dim, generator=generator) * 10 + 0.1
    return features * scale + 3.0, labels * 7 + 100  # labels need not start at 0


def split(features, labels, seed=0):
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    half = len(labels) // 2
    return features[order[:half]], labels[order[:half]], features[order[half:]], labels[order[half:]]


def test_separable_data_is_probed_perfectly():
    train_x, train_y, test_x, test_y = split(*clustered())
    result = linear_probe_accuracy(train_x, train_y, test_x, test_y)
    assert result["train_accuracy"] == 1.0
    assert result["test_accuracy"] >= 0.99
    assert knn_accuracy(train_x, train_y, test_x, test_y) >= 0.99


def test_random_labels_are_at_chance():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2000, 16, generator=generator)
    labels = torch.randint(0, 4, (2000,), generator=generator)
    train_x, train_y, test_x, test_y = split(features, labels)
    result = linear_probe_accuracy(train_x, train_y, test_x, test_y)
    assert result["test_accuracy"] == pytest.approx(0.25, abs=0.05)
    assert knn_accuracy(train_x, train_y, test_x, test_y) == pytest.approx(0.25, abs=0.05)


def test_probe_is_deterministic():
    train_x, train_y, test_x, test_y = split(*clustered(spread=3.0))
    first = linear_probe_accuracy(train_x, train_y, test_x, test_y, max_steps=100)
    assert first == linear_probe_accuracy(train_x, train_y, test_x, test_y, max_steps=100)
    assert 0.3 < first["test_accuracy"] < 1.0  # overlapping blobs: a real, not trivial, number


def test_knn_equals_naive_weighted_vote():
    generator = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(60, 8, generator=generator), torch.randn(25, 8, generator=generator)
    train_y, test_y = torch.randint(0, 3, (60,), generator=generator), torch.randint(0, 3, (25,), generator=generator)
    correct = 0
    for query, label in zip(test_x.tolist(), test_y.tolist()):
        similarities = [F.cosine_similarity(torch.tensor(query), row, dim=0).item() for row in train_x]
        nearest = sorted(range(60), key=lambda j: -similarities[j])[:5]
        votes = {}
        for j in nearest:
            votes[int(train_y[j])] = votes.get(int(train_y[j]), 0.0) + torch.tensor(similarities[j] / 0.07).exp().item()
        correct += max(votes, key=votes.get) == label
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=5, chunk_size=7) == pytest.approx(correct / 25)


def test_unseen_test_label_counts_as_error():
    train_x, train_y, test_x, test_y = split(*clustered())
    test_y = test_y.clone()
    test_y[:10] = -5
    assert knn_accuracy(train_x, train_y, test_x, test_y) <= 1 - 10 / len(test_y)
