"""Pairwise contrastive loss: loop reference, explicit pairs, pytorch-metric-learning, bad input."""

import pytest
import torch
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import reducers as pml_reducers

from mmssl.losses import contrastive_loss, contrastive_loss_from_pairs


def pair_distance(a, b, distance):
    if distance == "euclidean":
        return torch.sqrt(((a - b) ** 2).sum())
    if distance == "squared_euclidean":
        return ((a - b) ** 2).sum()
    return 1 - (a @ b) / (a.norm() * b.norm())


def pair_term(d, same, margin, squared):
    if same:
        return d**2 if squared else d
    hinge = torch.clamp(margin - d, min=0)
    return hinge**2 if squared else hinge


def loop_contrastive(embeddings, labels, margin, squared, distance):
    terms = []
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i != j:
                d = pair_distance(embeddings[i], embeddings[j], distance)
                terms.append(pair_term(d, bool(labels[i] == labels[j]), margin, squared))
    return torch.stack(terms).mean()


@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine"])
@pytest.mark.parametrize("squared", [True, False])
def test_matches_loop_reference(labelled_batch, matches_reference, squared, distance):
    embeddings, labels = labelled_batch
    margin = 3.0 if distance != "cosine" else 1.0  # a margin some negatives violate
    loss = matches_reference(
        lambda x: contrastive_loss(x, labels, margin=margin, squared=squared, distance=distance),
        lambda x: loop_contrastive(x, labels, margin, squared, distance),
        embeddings,
    )
    assert loss > 0.1


def test_given_pairs_match_loop_reference(matches_reference):
    generator = torch.Generator().manual_seed(3)
    first, second = torch.randn(2, 6, 4, generator=generator, dtype=torch.float64)
    is_positive = torch.tensor([True, False, True, False, False, True])

    def reference(a, b):
        terms = [pair_term(pair_distance(a[k], b[k], "euclidean"), bool(is_positive[k]), 2.5, True) for k in range(6)]
        return torch.stack(terms).mean()

    matches_reference(lambda a, b: contrastive_loss_from_pairs(a, b, is_positive, margin=2.5), reference, first, second)


def test_batch_pairs_equal_the_same_pairs_given_explicitly(labelled_batch):
    embeddings, labels = labelled_batch
    rows, cols = torch.nonzero(~torch.eye(10, dtype=torch.bool), as_tuple=True)
    explicit = contrastive_loss_from_pairs(embeddings[rows], embeddings[cols], labels[rows] == labels[cols], margin=3.0)
    torch.testing.assert_close(contrastive_loss(embeddings, labels, margin=3.0), explicit, rtol=1e-12, atol=0)


def test_plain_form_agrees_with_pytorch_metric_learning(labelled_batch):
    embeddings, labels = labelled_batch
    ours_input = embeddings.clone().requires_grad_(True)
    pml_input = embeddings.clone().requires_grad_(True)
    ours = contrastive_loss(ours_input, labels, margin=3.0, squared=False, reduction="sum")
    peer = pml_losses.ContrastiveLoss(
        pos_margin=0,
        neg_margin=3.0,
        distance=pml_distances.LpDistance(normalize_embeddings=False),
        reducer=pml_reducers.SumReducer(),
    )(pml_input, labels)
    torch.testing.assert_close(ours, peer, rtol=1e-6, atol=0)
    ours.backward()
    peer.backward()
    torch.testing.assert_close(ours_input.grad, pml_input.grad, rtol=1e-6, atol=1e-9)


def test_documented_differences_from_pytorch_metric_learning(labelled_batch):
    """pml's default ContrastiveLoss normalises embeddings and averages non-zero positive and
    negative terms separately; its power=2 distance squares d inside the hinge, not the hinge."""
    embeddings, labels = labelled_batch
    normalized = torch.nn.functional.normalize(embeddings, dim=1)
    per_pair = contrastive_loss(normalized, labels, margin=1.0, squared=False, reduction="none")
    same = (labels[:, None] == labels[None, :])[~torch.eye(10, dtype=torch.bool)]
    positives, negatives = per_pair[same], per_pair[~same]
    expected = positives[positives > 0].mean() + negatives[negatives > 0].mean()
    peer_default = pml_losses.ContrastiveLoss(pos_margin=0, neg_margin=1.0)(embeddings, labels)
    torch.testing.assert_close(peer_default, expected, rtol=1e-6, atol=0)
    assert abs(float(peer_default) - float(contrastive_loss(normalized, labels, squared=False))) > 1e-3

    squared_distance = pml_distances.LpDistance(normalize_embeddings=False, power=2)
    peer_squared = pml_losses.ContrastiveLoss(
        pos_margin=0, neg_margin=9.0, distance=squared_distance, reducer=pml_reducers.DoNothingReducer()
    )(embeddings, labels)
    ours_squared = contrastive_loss(embeddings, labels, margin=3.0, squared=True, reduction="none")
    torch.testing.assert_close(ours_squared[same], peer_squared["pos_loss"]["losses"], rtol=1e-6, atol=0)
    pml_negative = peer_squared["neg_loss"]["losses"]
    all_distances = torch.cdist(embeddings, embeddings)[~torch.eye(10, dtype=torch.bool)][~same]
    torch.testing.assert_close(pml_negative, (9.0 - all_distances**2).clamp_min(0), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(ours_squared[~same], (3.0 - all_distances).clamp_min(0) ** 2, rtol=1e-6, atol=1e-9)


def test_bad_input_names_the_argument(labelled_batch):
    embeddings, labels = labelled_batch
    with pytest.raises(ValueError, match="labels has shape \\(9,\\).*one entry per row of embeddings"):
        contrastive_loss(embeddings, labels[:9])
    with pytest.raises(ValueError, match="embeddings contains NaN"):
        contrastive_loss(embeddings.index_fill(0, torch.tensor([2]), float("nan")), labels)
    with pytest.raises(ValueError, match="second has shape \\(4, 5\\)"):
        contrastive_loss_from_pairs(embeddings[:5], embeddings[:4], torch.ones(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="distance='manhattan' is not supported"):
        contrastive_loss(embeddings, labels, distance="manhattan")
    with pytest.raises(ValueError, match="reduction='avg'"):
        contrastive_loss(embeddings, labels, reduction="avg")
