"""The shared vocabulary: distances, label masks, reductions."""

import pytest
import torch

from mmssl.losses import pairwise_distances, paired_distances
from mmssl.losses.pairs import label_masks, masked_logsumexp
from mmssl.losses.reduction import reduce_losses


@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine"])
def test_pairwise_and_paired_distances_match_definitions(distance):
    generator = torch.Generator().manual_seed(8)
    x, y = torch.randn(2, 6, 3, generator=generator, dtype=torch.float64)
    expected = {
        "euclidean": torch.cdist(x, y),
        "squared_euclidean": torch.cdist(x, y) ** 2,
        "cosine": 1 - torch.nn.functional.cosine_similarity(x[:, None], y[None], dim=2),
    }[distance]
    torch.testing.assert_close(pairwise_distances(x, y, distance), expected, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(paired_distances(x, y, distance), expected.diagonal(), rtol=1e-9, atol=1e-12)


def test_coincident_points_have_zero_distance_and_zero_gradient():
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [4.0, 6.0]], dtype=torch.float64, requires_grad=True)
    distances = pairwise_distances(x)
    assert float(distances.detach()[0, 1]) < 1e-150 and float(distances.detach()[0, 2]) == 5.0
    (grad,) = torch.autograd.grad(distances[0, 1] + distances[0, 0], x)
    assert torch.equal(grad, torch.zeros_like(grad))


def test_label_masks_exclude_self_pairs():
    positive, negative = label_masks(torch.tensor([0, 0, 1]))
    assert positive.tolist() == [[False, True, False], [True, False, False], [False, False, False]]
    assert negative.tolist() == [[False, False, True], [False, False, True], [True, True, False]]


def test_masked_logsumexp_of_an_empty_row_has_zero_gradient():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    mask = torch.tensor([[True, False], [False, False]])
    out = masked_logsumexp(values, mask)
    assert float(out.detach()[0]) == 1.0 and float(out.detach()[1]) < -1e30
    (grad,) = torch.autograd.grad(out[0] + 0 * out[1], values)
    assert grad.tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_reductions_over_valid_terms():
    losses = torch.tensor([1.0, 2.0, float("inf"), 4.0], requires_grad=True)
    valid = torch.tensor([True, True, False, True])
    assert float(reduce_losses(losses, valid, "mean").detach()) == pytest.approx(7 / 3)
    assert float(reduce_losses(losses, valid, "sum").detach()) == 7.0
    assert reduce_losses(losses, valid, "none").tolist() == [1.0, 2.0, 4.0]
    empty = reduce_losses(losses, torch.zeros(4, dtype=torch.bool), "mean")
    (grad,) = torch.autograd.grad(empty, losses)
    assert float(empty.detach()) == 0.0 and grad.tolist() == [0.0, 0.0, 0.0, 0.0]
    assert float(reduce_losses(torch.zeros(0, requires_grad=True), None, "mean").detach()) == 0.0
