"""Lifted structured loss and its generalized form: loop reference, pytorch-metric-learning."""

import pytest
import torch
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses

from mmssl.losses import generalized_lifted_structure_loss, lifted_structure_loss


def dist(a, b):
    return torch.sqrt(((a - b) ** 2).sum())


def loop_lifted(embeddings, labels, margin):
    """Oh Song et al. eq. 4 over unordered positive pairs i < j."""
    n = len(labels)
    terms = []
    for i in range(n):
        for j in range(i + 1, n):
            if labels[i] != labels[j]:
                continue
            edges = [margin - dist(embeddings[i], embeddings[k]) for k in range(n) if labels[k] != labels[i]]
            edges += [margin - dist(embeddings[j], embeddings[k]) for k in range(n) if labels[k] != labels[j]]
            big_j = torch.log(sum(torch.exp(e) for e in edges)) + dist(embeddings[i], embeddings[j])
            terms.append(torch.clamp(big_j, min=0) ** 2)
    return sum(terms) / (2 * len(terms))


def loop_generalized(embeddings, labels, margin):
    n = len(labels)
    terms = []
    for a in range(n):
        positives = [dist(embeddings[a], embeddings[p]) for p in range(n) if p != a and labels[p] == labels[a]]
        negatives = [margin - dist(embeddings[a], embeddings[k]) for k in range(n) if labels[k] != labels[a]]
        if positives and negatives:
            value = torch.log(sum(torch.exp(d) for d in positives)) + torch.log(sum(torch.exp(e) for e in negatives))
            terms.append(torch.clamp(value, min=0))
    return torch.stack(terms).mean()


@pytest.mark.parametrize("margin", [1.0, 4.0])
def test_lifted_matches_loop_reference(labelled_batch, matches_reference, margin):
    embeddings, labels = labelled_batch
    loss = matches_reference(
        lambda x: lifted_structure_loss(x, labels, margin=margin), lambda x: loop_lifted(x, labels, margin), embeddings
    )
    assert loss > 0.1


@pytest.mark.parametrize("margin", [1.0, 4.0])
def test_generalized_matches_loop_reference(labelled_batch, matches_reference, margin):
    embeddings, labels = labelled_batch
    loss = matches_reference(
        lambda x: generalized_lifted_structure_loss(x, labels, margin=margin),
        lambda x: loop_generalized(x, labels, margin),
        embeddings,
    )
    assert loss > 0.1


def test_lifted_agrees_with_pytorch_metric_learning(labelled_batch, matches_reference):
    embeddings, labels = labelled_batch
    peer = pml_losses.LiftedStructureLoss(neg_margin=2.0, distance=pml_distances.LpDistance(normalize_embeddings=False))
    matches_reference(lambda x: lifted_structure_loss(x, labels, margin=2.0), lambda x: peer(x, labels), embeddings)


def test_generalized_agrees_with_pytorch_metric_learning(labelled_batch, matches_reference):
    embeddings, labels = labelled_batch
    peer = pml_losses.GeneralizedLiftedStructureLoss(
        neg_margin=2.0, distance=pml_distances.LpDistance(normalize_embeddings=False)
    )
    matches_reference(
        lambda x: generalized_lifted_structure_loss(x, labels, margin=2.0), lambda x: peer(x, labels), embeddings
    )


def test_generalized_differs_from_pml_on_anchors_without_positive(labelled_batch):
    """Documented difference: pml keeps an anchor with no positive (positive term 0) in its mean;
    we average only anchors that have a positive and a negative."""
    embeddings, labels = labelled_batch
    labels = labels.clone()
    labels[4] = 9  # a singleton: no positive for anchor 4
    ours = generalized_lifted_structure_loss(embeddings, labels, margin=2.0, reduction="none")
    assert ours.shape == (9,)
    distances = torch.cdist(embeddings, embeddings)
    singleton_term = torch.logsumexp(2.0 - distances[4, labels != 9], dim=0).clamp_min(0)
    peer = pml_losses.GeneralizedLiftedStructureLoss(
        neg_margin=2.0, distance=pml_distances.LpDistance(normalize_embeddings=False)
    )(embeddings, labels)
    torch.testing.assert_close(peer, (ours.sum() + singleton_term) / 10, rtol=1e-6, atol=0)
    assert abs(float(peer) - float(ours.mean())) > 1e-3


def test_bad_input(labelled_batch):
    embeddings, labels = labelled_batch
    with pytest.raises(ValueError, match="labels has shape \\(2, 5\\)"):
        lifted_structure_loss(embeddings, labels.view(2, 5))
    with pytest.raises(ValueError, match="embeddings must have 2 dimensions"):
        generalized_lifted_structure_loss(embeddings[0], labels)
