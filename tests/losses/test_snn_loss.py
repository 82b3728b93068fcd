"""Soft nearest neighbour loss: loop reference, temperature, stability."""

import math

import pytest
import torch

from mmssl.losses import SoftNearestNeighbourLoss, soft_nearest_neighbour_loss


def loop_snn(embeddings, labels, temperature):
    n = len(labels)
    terms = []
    for i in range(n):
        same = sum(
            torch.exp(-((embeddings[i] - embeddings[j]) ** 2).sum() / temperature)
            for j in range(n)
            if j != i and labels[j] == labels[i]
        )
        everyone = sum(torch.exp(-((embeddings[i] - embeddings[k]) ** 2).sum() / temperature) for k in range(n) if k != i)
        if torch.is_tensor(same):
            terms.append(-torch.log(same / everyone))
    return torch.stack(terms).mean()


@pytest.mark.parametrize("temperature", [0.5, 3.0])
def test_matches_loop_reference(labelled_batch, matches_reference, temperature):
    embeddings, labels = labelled_batch
    loss = matches_reference(
        lambda x: soft_nearest_neighbour_loss(x, labels, temperature),
        lambda x: loop_snn(x, labels, temperature),
        embeddings,
    )
    assert loss > 0.1


def test_singletons_are_left_out_of_the_mean(labelled_batch, matches_reference):
    embeddings, labels = labelled_batch
    labels = labels.clone()
    labels[0] = 7
    matches_reference(
        lambda x: soft_nearest_neighbour_loss(x, labels, 2.0), lambda x: loop_snn(x, labels, 2.0), embeddings
    )


def test_learnable_temperature_gets_a_gradient(labelled_batch):
    embeddings, labels = labelled_batch
    module = SoftNearestNeighbourLoss(temperature=2.0, learnable=True).double()
    loss = module(embeddings, labels)
    loss.backward()
    assert math.isclose(float(module.log_temperature.detach().exp()), 2.0, rel_tol=1e-6)
    torch.testing.assert_close(loss, soft_nearest_neighbour_loss(embeddings, labels, 2.0), rtol=1e-6, atol=0)
    assert abs(float(module.log_temperature.grad)) > 1e-4


def test_far_apart_points_stay_finite():
    """Every exp(-d/T) underflows here; the log-sum-exp form still gives the exact answer."""
    embeddings = torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, 101.0], [100.0, 101.0]])
    labels = torch.tensor([0, 0, 1, 1])
    loss = soft_nearest_neighbour_loss(embeddings, labels, temperature=0.1)
    # Nearest other point of every anchor has the same label (d^2 = 100^2), the next has 101^2.
    expected = math.log1p(math.exp(-(101**2 - 100**2) / 0.1) + math.exp(-(101**2 + 100**2 - 100**2) / 0.1))
    assert math.isclose(float(loss), expected, abs_tol=1e-6)


def test_bad_input(labelled_batch):
    embeddings, labels = labelled_batch
    with pytest.raises(ValueError, match="temperature must be > 0"):
        soft_nearest_neighbour_loss(embeddings, labels, temperature=0.0)
    with pytest.raises(ValueError, match="labels has shape \\(11,\\)"):
        soft_nearest_neighbour_loss(embeddings, torch.zeros(11))
