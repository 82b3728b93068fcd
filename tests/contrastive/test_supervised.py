"""Supervised metric learning on emoji categories with the loss library's labelled losses."""

import pytest
import torch
from contrastive_helpers import fixed_batch, train_on

from mmssl.contrastive import ContrastiveConfig, SupervisedMetric, build_method
from mmssl.contrastive.data import one_view
from mmssl.contrastive.supervised import LABELLED_LOSSES
from mmssl.encoders import build_tower


def test_labelled_losses_are_the_registry_entries_that_take_labels():
    assert {"triplet", "lifted_structure", "soft_nearest_neighbour", "contrastive"} <= set(LABELLED_LOSSES)
    assert "info_nce" not in LABELLED_LOSSES and "nce" not in LABELLED_LOSSES


@pytest.mark.parametrize("loss", ["triplet", "soft_nearest_neighbour"])
def test_supervised_loss_falls_on_emoji_categories(emoji_images, loss):
    images, categories = emoji_images
    classes = sorted(set(categories))
    labels = [classes.index(c) for c in categories]
    torch.manual_seed(0)
    tower = build_tower("resnet-tiny-64")
    method = build_method("supervised", tower, ContrastiveConfig(loss=loss, margin=0.3, mining="all",
                                                                 temperature=0.5, projection_dim=16, hidden_dim=32),
                          num_samples=len(images))
    assert isinstance(method, SupervisedMetric)
    batch = fixed_batch(images[:20], one_view(tower.transform(train=False)), labels=labels[:20])
    losses = train_on(method, batch, steps=12)
    assert losses[-1] < 0.6 * losses[0]


def test_supervised_refuses_an_unlabelled_loss_and_an_unlabelled_batch():
    tower = build_tower("resnet-tiny-64")
    with pytest.raises(ValueError, match="does not take labels"):
        SupervisedMetric(tower, "info_nce")
    method = SupervisedMetric(tower)
    with pytest.raises(ValueError, match="label"):
        method.loss({"view1": torch.zeros(2, 3, 64, 64)})
