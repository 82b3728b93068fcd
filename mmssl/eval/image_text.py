"""Image–text retrieval protocol: text→image and image→text Recall@K over a whole held-out gallery.

Relevance is by identical normalised caption, not by pair index: image corpora repeat captions
(several clipart images are titled "cat"), and ranking another "cat" image first for the query "cat"
is right, not a miss. Each direction is reported with the random-ranking baseline beside it,
computed for the same per-query number of relevant items.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import torch

from mmssl.eval.metrics import random_baseline, retrieval_metrics

_NON_WORD = re.compile(r"[\W_]+")


def normalize_caption(caption: str) -> str:
    """Caption key for relevance: NFKC, case-folded, punctuation runs to one space, stripped.

    "A blue bicycle." and "a  blue bicycle" share a key; "T-shirt" becomes "t shirt".
    """
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", caption).casefold()).strip()


def caption_relevance(
    text_captions: Sequence[str], image_captions: Sequence[str | Sequence[str]]
) -> torch.Tensor:
    """(T, I) bool: text t is relevant to image i iff its normalised caption is one of image i's.

    Args:
        text_captions: T query captions.
        image_captions: I captions, each a string or a list of strings (extra captions, keywords).
    """
    key_ids: dict[str, int] = {}
    text_keys = torch.tensor([key_ids.setdefault(normalize_caption(c), len(key_ids)) for c in text_captions])  # (T,)
    relevance = torch.zeros(len(text_captions), len(image_captions), dtype=torch.bool)
    for image, captions in enumerate(image_captions):
        for caption in [captions] if isinstance(captions, str) else captions:
            key = key_ids.get(normalize_caption(caption))
            if key is not None:
                relevance[:, image] |= text_keys == key
    return relevance


def image_text_recall(
    text_emb: torch.Tensor,
    image_emb: torch.Tensor,
    captions: Sequence[str],
    image_captions: Sequence[str | Sequence[str]] | None = None,
    ks: Sequence[int] = (1, 5, 10),
    normalize: bool = True,
    ties: str = "pessimistic",
) -> dict:
    """Text→image and image→text Recall@K and MRR over the whole gallery, with random baselines.

    Args:
        text_emb: (T, D) caption embeddings.
        image_emb: (I, D) image embeddings.
        captions: T captions, ``captions[t]`` the text of ``text_emb[t]``.
        image_captions: I captions (strings or lists of strings) of the images; ``None`` means the
            texts are the images' captions pair by pair (requires T == I).
        ks: Recall cut-offs.
        normalize: L2-normalise rows first (cosine similarity).
        ties: "pessimistic" or "optimistic".

    Returns:
        ``{"text_to_image": {"mrr", "recall@K"..., "random": {...}}, "image_to_text": {...},
        "num_texts", "num_images"}``. Queries without any relevant item (an image whose caption no
        text shares, when ``image_captions`` is given) are left out; ``num_queries`` counts the rest.

    Raises:
        ValueError: on mismatched lengths, or when no text shares a caption with any image.
    """
    text_emb, image_emb = torch.as_tensor(text_emb).float(), torch.as_tensor(image_emb).float()
    if image_captions is None:
        if len(captions) != len(image_emb):
            raise ValueError(f"{len(captions)} captions for {len(image_emb)} images; pass image_captions")
        image_captions = captions
    if len(captions) != len(text_emb) or len(image_captions) != len(image_emb):
        raise ValueError(
            f"got {len(text_emb)} text embeddings for {len(captions)} captions and "
            f"{len(image_emb)} image embeddings for {len(image_captions)} image captions"
        )
    if normalize:
        text_emb = torch.nn.functional.normalize(text_emb, dim=1)  # (T, D)
        image_emb = torch.nn.functional.normalize(image_emb, dim=1)  # (I, D)
    scores = text_emb @ image_emb.T  # (T, I)
    relevance = caption_relevance(captions, image_captions)  # (T, I)

    out: dict = {"num_texts": len(text_emb), "num_images": len(image_emb)}
    for name, direction_scores, direction_relevance in (
        ("text_to_image", scores, relevance),
        ("image_to_text", scores.T, relevance.T),
    ):
        has_gold = direction_relevance.any(dim=1)  # (Q,)
        if not bool(has_gold.any()):
            raise ValueError("no text caption matches any image caption; check that captions and images align")
        kept_relevance = direction_relevance[has_gold]  # (Q', N)
        metrics = retrieval_metrics(direction_scores[has_gold], kept_relevance, ks, ties)
        metrics["num_queries"] = int(has_gold.sum())
        metrics["random"] = random_baseline(direction_scores.shape[1], kept_relevance.sum(dim=1), ks)
        out[name] = metrics
    return out
