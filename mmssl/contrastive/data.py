"""Datasets of views for the contrastive methods, and their collate function.

A sample is ``{"index": i, <view name>: view, ...}`` plus ``"label"`` for the supervised
variants. Views are image tensors (made by an augmentation or a split) or code strings; the
collate function stacks tensors and tokenises strings with each view's tower, so the trainer
hands a method exactly the inputs its towers take.

Items are kept raw (a (N, S, S, 3) uint8 array of images, or a list of strings) so DeepCluster
and InterCLR can embed the whole set (:meth:`ViewDataset.raw`) between rounds, and DeepCluster
can resample it class-balanced (:attr:`ViewDataset.index_map`).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset


class ViewDataset(Dataset):
    """Items and a function making a sample's views from its raw item.

    Args:
        items: (N, S, S, 3) uint8 images or N strings (code).
        make_views: raw item (PIL image or string) -> ``{view name: view}``; may be random.
        labels: optional (N,) integer labels, returned as ``"label"``.
        index_map: optional (N,) long tensor; sample ``i`` is item ``index_map[i]``
            (DeepCluster's class-balanced resampling sets it between rounds).
    """

    def __init__(self, items: np.ndarray | list[str], make_views: Callable[[Any], dict[str, Any]],
                 labels: torch.Tensor | None = None):
        if len(items) == 0:
            raise ValueError("no items to build views from; build the corpus first (python -m mmssl data build)")
        if labels is not None and len(labels) != len(items):
            raise ValueError(f"{len(items)} items but {len(labels)} labels")
        self.items, self.make_views, self.labels = items, make_views, labels
        self.index_map: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.items)

    def raw(self, i: int) -> Image.Image | str:
        """Item ``i`` as a PIL image or a string (no augmentation, no index_map)."""
        item = self.items[i]
        return Image.fromarray(item) if isinstance(item, np.ndarray) else item

    def __getitem__(self, i: int) -> dict:
        if self.index_map is not None:
            i = int(self.index_map[i])
        sample = {"index": i, **self.make_views(self.raw(i))}
        if self.labels is not None:
            sample["label"] = int(self.labels[i])
        return sample


def two_views(augment: Callable) -> Callable[[Any], dict[str, Any]]:
    """``make_views`` for instance discrimination: two independent augmentations of one item."""
    return lambda item: {"view1": augment(item), "view2": augment(item)}


def one_view(augment: Callable) -> Callable[[Any], dict[str, Any]]:
    """``make_views`` for DeepCluster and the supervised variants: one augmentation."""
    return lambda item: {"view1": augment(item)}


class ViewCollator:
    """Samples -> batch: tensors stacked, ints to a (B,) long tensor, strings tokenised.

    Args:
        tokenize: view name -> the tokenize function of the tower that encodes that view
            (code views); image views need none.
    """

    def __init__(self, tokenize: dict[str, Callable[[list[str]], dict]] | None = None):
        self.tokenize = tokenize or {}

    def __call__(self, samples: list[dict]) -> dict:
        batch = {}
        for key in samples[0]:
            values = [s[key] for s in samples]
            if torch.is_tensor(values[0]):
                batch[key] = torch.stack(values)  # (B, ...)
            elif isinstance(values[0], int):
                batch[key] = torch.tensor(values, dtype=torch.long)  # (B,)
            elif isinstance(values[0], str):
                if key not in self.tokenize:
                    raise ValueError(f"view {key!r} holds strings but no tokenizer was given for it; "
                                     f"pass ViewCollator(tokenize={{{key!r}: tower.tokenize}})")
                batch[key] = self.tokenize[key](values)  # input_ids, attention_mask: (B, L)
            else:
                raise TypeError(f"cannot collate view {key!r} of type {type(values[0]).__name__}")
        return batch


@torch.no_grad()
def encode_all(encoder, dataset: ViewDataset, batch_size: int = 256,
               project: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Features of every raw item in order, in eval mode: (N, D) float32 on the encoder's device.

    ``project`` maps the tower's features further (e.g. InterCLR's projection head).
    """
    chunks = []
    for start in range(0, len(dataset), batch_size):
        raw = [dataset.raw(i) for i in range(start, min(start + batch_size, len(dataset)))]
        features = encoder.encode(raw, batch_size=batch_size)  # (b, D)
        if project is not None:
            features = project(features)
        chunks.append(features.float())
    return torch.cat(chunks)
