"""Triplet margin loss and miners: loop reference, explicit triplets, pytorch-metric-learning."""

import pytest
import torch
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning import reducers as pml_reducers

from mmssl.losses import mine_triplets, triplet_margin_loss, triplet_margin_loss_from_triplets

MARGIN = 0.8


def dist(a, b):
    return torch.sqrt(((a - b) ** 2).sum())


def loop_triplet(embeddings, labels, mining, margin=MARGIN):
    n = len(labels)
    terms = []
    for a in range(n):
        positives = [p for p in range(n) if p != a and labels[p] == labels[a]]
        negatives = [k for k in range(n) if labels[k] != labels[a]]
        if mining == "hard":
            if positives and negatives:
                hardest_positive = max(dist(embeddings[a], embeddings[p]) for p in positives)
                hardest_negative = min(dist(embeddings[a], embeddings[k]) for k in negatives)
                terms.append(torch.clamp(hardest_positive - hardest_negative + margin, min=0))
            continue
        for p in positives:
            for k in negatives:
                d_ap, d_an = dist(embeddings[a], embeddings[p]), dist(embeddings[a], embeddings[k])
                if mining == "semi_hard" and not (d_ap < d_an <= d_ap + margin):
                    continue
                terms.append(torch.clamp(d_ap - d_an + margin, min=0))
    return torch.stack(terms).mean() if terms else embeddings.sum() * 0


@pytest.mark.parametrize("mining", ["all", "hard", "semi_hard"])
def test_matches_loop_reference(labelled_batch, matches_reference, mining):
    embeddings, labels = labelled_batch
    loss = matches_reference(
        lambda x: triplet_margin_loss(x, labels, margin=MARGIN, mining=mining),
        lambda x: loop_triplet(x, labels, mining),
        embeddings,
    )
    assert loss > 0.05


@pytest.mark.parametrize("mining", ["all", "hard", "semi_hard"])
def test_mined_triplets_reproduce_the_loss(labelled_batch, mining):
    embeddings, labels = labelled_batch
    anchor, positive, negative = mine_triplets(embeddings, labels, mining, margin=MARGIN)
    expected_count = {"all": 4 * 3 * 6 + 6 * 2 * 7, "hard": 10}.get(mining)
    if expected_count is not None:
        assert anchor.numel() == expected_count
    assert bool((labels[anchor] == labels[positive]).all()) and bool((labels[anchor] != labels[negative]).all())
    explicit = triplet_margin_loss_from_triplets(embeddings[anchor], embeddings[positive], embeddings[negative], MARGIN)
    torch.testing.assert_close(triplet_margin_loss(embeddings, labels, MARGIN, mining), explicit, rtol=1e-12, atol=0)


def test_explicit_triplets_match_loop_reference(matches_reference):
    generator = torch.Generator().manual_seed(4)
    anchor, positive, negative = torch.randn(3, 6, 4, generator=generator, dtype=torch.float64)

    def reference(a, p, n):
        return torch.stack([torch.clamp(dist(a[t], p[t]) - dist(a[t], n[t]) + 1.0, min=0) for t in range(6)]).mean()

    matches_reference(
        lambda a, p, n: triplet_margin_loss_from_triplets(a, p, n, margin=1.0), reference, anchor, positive, negative
    )


def pml_triplet(mining):
    distance = pml_distances.LpDistance(normalize_embeddings=False)
    loss = pml_losses.TripletMarginLoss(margin=MARGIN, distance=distance, reducer=pml_reducers.MeanReducer())
    miner = {
        "all": None,
        "hard": pml_miners.BatchHardMiner(distance=distance),
        "semi_hard": pml_miners.TripletMarginMiner(margin=MARGIN, type_of_triplets="semihard", distance=distance),
    }[mining]
    return lambda x, labels: loss(x, labels, None if miner is None else miner(x, labels))


@pytest.mark.parametrize("mining", ["all", "hard", "semi_hard"])
def test_agrees_with_pytorch_metric_learning(labelled_batch, matches_reference, mining):
    embeddings, labels = labelled_batch
    peer = pml_triplet(mining)
    matches_reference(
        lambda x: triplet_margin_loss(x, labels, margin=MARGIN, mining=mining), lambda x: peer(x, labels), embeddings
    )


def test_pml_default_reducer_averages_only_nonzero_triplets(labelled_batch):
    """Documented difference: pml's default AvgNonZeroReducer ignores zero-loss triplets."""
    embeddings, labels = labelled_batch
    per_triplet = triplet_margin_loss(embeddings, labels, margin=MARGIN, reduction="none")
    peer = pml_losses.TripletMarginLoss(margin=MARGIN, distance=pml_distances.LpDistance(normalize_embeddings=False))
    torch.testing.assert_close(peer(embeddings, labels), per_triplet[per_triplet > 0].mean(), rtol=1e-6, atol=0)
    assert (per_triplet == 0).any()


def test_bad_input(labelled_batch):
    embeddings, labels = labelled_batch
    with pytest.raises(ValueError, match="mining='hardest' is not supported"):
        triplet_margin_loss(embeddings, labels, mining="hardest")
    with pytest.raises(ValueError, match="negative has shape \\(3, 5\\)"):
        triplet_margin_loss_from_triplets(embeddings[:4], embeddings[:4], embeddings[:3])
    with pytest.raises(ValueError, match="margin must be >= 0"):
        triplet_margin_loss(embeddings, labels, margin=-0.1)
