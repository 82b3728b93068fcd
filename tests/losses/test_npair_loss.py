"""Multi-class N-pair loss: loop reference, regulariser, pytorch-metric-learning."""

import math

import pytest
import torch
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import regularizers as pml_regularizers

from mmssl.losses import npair_loss


def loop_npair(anchors, positives, l2_weight):
    n = anchors.shape[0]
    terms = []
    for i in range(n):
        own = anchors[i] @ positives[i]
        total = sum(torch.exp(anchors[i] @ positives[j] - own) for j in range(n) if j != i)
        norms = (anchors[i] ** 2).sum() + (positives[i] ** 2).sum()
        terms.append(torch.log(1 + total) + l2_weight / 2 * norms)
    return torch.stack(terms).mean()


@pytest.mark.parametrize("l2_weight", [0.0, 0.002, 0.5])
def test_matches_loop_reference(paired_batch, matches_reference, l2_weight):
    loss = matches_reference(
        lambda a, p: npair_loss(a, p, l2_weight=l2_weight),
        lambda a, p: loop_npair(a, p, l2_weight),
        *paired_batch,
    )
    assert loss > 0.1


def test_regulariser_is_weight_times_mean_squared_norm(paired_batch):
    anchors, positives = paired_batch
    difference = npair_loss(anchors, positives, l2_weight=0.3) - npair_loss(anchors, positives, l2_weight=0.0)
    mean_squared_norm = torch.cat([anchors, positives]).pow(2).sum(dim=1).mean()
    torch.testing.assert_close(difference, 0.3 * mean_squared_norm, rtol=1e-9, atol=0)


@pytest.mark.parametrize("l2_weight", [0.0, 0.01])
def test_agrees_with_pytorch_metric_learning(paired_batch, matches_reference, l2_weight):
    anchors, positives = paired_batch
    labels = torch.arange(anchors.shape[0]).repeat(2)
    peer = pml_losses.NPairsLoss(
        distance=pml_distances.DotProductSimilarity(normalize_embeddings=False),
        embedding_regularizer=pml_regularizers.LpRegularizer(power=2) if l2_weight else None,
        embedding_reg_weight=l2_weight or 1,
    )
    matches_reference(
        lambda a, p: npair_loss(a, p, l2_weight=l2_weight),
        lambda a, p: peer(torch.cat([a, p]), labels),
        anchors,
        positives,
    )


def test_pml_default_normalizes_embeddings(paired_batch):
    """Documented difference: pml's default DotProductSimilarity L2-normalises; we use raw dot products."""
    anchors, positives = paired_batch
    peer = pml_losses.NPairsLoss()(torch.cat([anchors, positives]), torch.arange(7).repeat(2))
    normalized = torch.nn.functional.normalize(torch.cat([anchors, positives]), dim=1)
    torch.testing.assert_close(peer, npair_loss(normalized[:7], normalized[7:], l2_weight=0.0), rtol=1e-6, atol=0)
    assert abs(float(peer) - float(npair_loss(anchors, positives, l2_weight=0.0))) > 1e-2


def test_one_pair_keeps_only_the_regulariser():
    anchor, positive = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]])
    assert float(npair_loss(anchor, positive, l2_weight=0.0)) == 0.0
    assert math.isclose(float(npair_loss(anchor, positive, l2_weight=0.1)), 0.05 * 26, rel_tol=1e-6)


def test_bad_input(paired_batch):
    anchors, positives = paired_batch
    with pytest.raises(ValueError, match="anchors has shape \\(7, 5\\) but positives has shape \\(6, 5\\)"):
        npair_loss(anchors, positives[:6])
    with pytest.raises(ValueError, match="positives contains NaN"):
        npair_loss(anchors, positives * float("nan"))
