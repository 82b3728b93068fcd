"""Image–text protocol: duplicate captions count as relevant in both directions."""

import math

import pytest
import torch

from mmssl.eval.image_text import caption_relevance, image_text_recall, normalize_caption
from mmssl.eval.metrics import random_baseline


def test_normalize_caption():
    assert normalize_caption("A blue bicycle.") == normalize_caption("a  blue   BICYCLE") == "a blue bicycle"
    assert normalize_caption("T-shirt") == "t shirt"


def test_duplicate_captions_are_relevant():
    captions = ["cat", "dog", "Cat", "fire truck"]
    relevance = caption_relevance(captions, captions)
    assert relevance.tolist() == [
        [True, False, True, False],
        [False, True, False, False],
        [True, False, True, False],
        [False, False, False, True],
    ]
    extra = caption_relevance(["sleepy face", "zzz"], [["sleepy face", "zzz"], "dog"])
    assert extra.tolist() == [[True, False], [True, False]]


def test_retrieving_the_other_cat_is_a_hit():
    captions = ["cat", "dog", "cat"]
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    texts = torch.tensor([[0.8, 0.2], [0.0, 1.0], [1.0, 0.0]])  # text 0 ("cat") is closest to image 2
    result = image_text_recall(texts, images, captions, ks=(1,))
    assert result["text_to_image"]["recall@1"] == 1.0
    assert result["image_to_text"]["recall@1"] == 1.0
    assert result["text_to_image"]["random"] == pytest.approx(random_baseline(3, torch.tensor([2, 1, 2]), ks=(1,)))


def test_random_embeddings_near_baseline_and_aligned_embeddings_perfect():
    generator = torch.Generator().manual_seed(0)
    captions = [f"thing {i % 300}" for i in range(600)]  # every caption twice
    random_result = image_text_recall(
        torch.randn(600, 32, generator=generator), torch.randn(600, 32, generator=generator), captions
    )
    for direction in ("text_to_image", "image_to_text"):
        metrics = random_result[direction]
        # two relevant images among 600: P(neither in the top 10) = C(598, 10) / C(600, 10)
        assert metrics["random"]["recall@10"] == pytest.approx(1 - math.comb(598, 10) / math.comb(600, 10))
        assert abs(metrics["recall@10"] - metrics["random"]["recall@10"]) < 0.03
    aligned = torch.randn(600, 32, generator=generator)
    perfect = image_text_recall(aligned, aligned, captions)
    assert perfect["text_to_image"]["recall@1"] == 1.0 and perfect["image_to_text"]["mrr"] == 1.0


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="captions"):
        image_text_recall(torch.randn(3, 4), torch.randn(2, 4), ["a", "b", "c"])
