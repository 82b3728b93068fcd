"""Pretraining data for the pretext tasks: unlabelled images or strings from the corpora's train split.

* images: every image of the chosen image corpora, decoded once into a (N, 128, 128, 3) uint8 array
  (:func:`mmssl.data.pairs.load_images`); each sample goes through the tower's train transform;
* strings: function code, docstrings, or image captions; batches are tokenised by the tower
  (:class:`TokenizingCollator`), so a sequence shorter than the context is padded and masked.
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

TextSource = Literal["code", "docstring", "code+docstring", "captions"]


class ImageDataset(Dataset):
    """(N, S, S, 3) uint8 images -> ``transform(PIL image)`` tensors."""

    def __init__(self, images: np.ndarray, transform: Callable[[Image.Image], torch.Tensor]):
        if len(images) == 0:
            raise ValueError("no images to pretrain on; build an image corpus first (python -m mmssl data build emoji)")
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(Image.fromarray(self.images[i]))  # (3, s, s)


class TextDataset(Dataset):
    """A list of strings (empty strings are kept: they become a lone start token)."""

    def __init__(self, texts: list[str]):
        if len(texts) == 0:
            raise ValueError("no texts to pretrain on; build the code corpus first (python -m mmssl data build code)")
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> str:
        return self.texts[i]


class TokenizingCollator:
    """List of strings -> the tower's ``tokenize`` batch (``input_ids``, ``attention_mask``)."""

    def __init__(self, tokenize: Callable[[list[str]], dict]):
        self.tokenize = tokenize

    def __call__(self, texts: list[str]) -> dict:
        return self.tokenize(texts)


def texts_of(records: list[dict], source: TextSource) -> list[str]:
    """The strings a text pretext task reads from corpus records."""
    if source == "code":
        return [r["code"] for r in records]
    if source == "docstring":
        return [r["docstring"] for r in records]
    if source == "code+docstring":
        return [t for r in records for t in (r["docstring"], r["code"])]
    if source == "captions":
        from mmssl.data.pairs import caption_choices

        return [c for captions in caption_choices(records) for c in captions]
    raise ValueError(f"unknown text source {source!r}: code, docstring, code+docstring or captions")
