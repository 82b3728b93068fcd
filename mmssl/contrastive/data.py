"""Datasets of views for the contrastive methods, and their collate function.

A sample is ``{"index": i, <view name>: view, ...}`` plus ``"label"`` for the supervised
variants. Views are image tensors (made by an augmentation or a split) or code strings; the
collate function stacks tensors and tokenises strings with each view's tower, so the trainer
hands a method exactly the inputs its towers take.

Items are kept raw (a (N, S, S, 3) uint8 array of images, or a list of strings) so DeepCluster
and InterCLR can embed the whole set (:meth:`ViewDataset.raw`) between rounds, and DeepCluster
can resample it class-balanced (:attr:`ViewDataset.index_map`).

:class:`MultiviewDataset` is the data's own multiview structure: its two views are one concept
drawn in two different artworks or icon sets ("calendar" from two sets), each augmented, for the
two-view methods (SimCLR, MoCo).
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


class MultiviewDataset(ViewDataset):
    """Two views of one concept from two different styles (artworks, icon sets), each augmented.

    Sample ``i`` is item ``i`` as ``view1`` and, as ``view2``, a uniformly drawn item of the same
    concept in another style; an item whose concept has no other style is paired with itself (two
    augmentations of one image, SimCLR's instance discrimination). The caller passes only items of
    one split, so a pair never crosses splits.

    Args:
        items: (N, S, S, 3) uint8 images.
        augment: PIL image -> (3, s, s) tensor (e.g. SimCLR's augmentation).
        concepts: (N,) concept key of each item (``mmssl.data.iconsets.concept_of`` of its name).
        styles: (N,) style of each item (its artwork or icon set).
    """

    def __init__(self, items: np.ndarray, augment: Callable, concepts: list[str], styles: list[str]):
        if not len(items) == len(concepts) == len(styles):
            raise ValueError(f"{len(items)} items, {len(concepts)} concepts and {len(styles)} styles; "
                             "one concept and one style per item")
        super().__init__(items, one_view(augment))
        self.augment = augment
        groups: dict[str, list[int]] = {}
        for i, concept in enumerate(concepts):
            groups.setdefault(concept, []).append(i)
        style_codes = {s: k for k, s in enumerate(sorted(set(styles)))}
        self.style = np.array([style_codes[s] for s in styles], dtype=np.int64)  # (N,)
        self.members = {c: np.array(m, dtype=np.int64) for c, m in groups.items()}  # concept -> item indices
        self.concept = list(concepts)

    def partners(self, i: int) -> np.ndarray:
        """The items that may be ``i``'s second view: its concept in every other style."""
        members = self.members[self.concept[i]]
        return members[self.style[members] != self.style[i]]

    def num_with_partner(self) -> int:
        """How many items have their concept in at least one other style."""
        return sum(len(m) for m in self.members.values() if len(set(self.style[m].tolist())) > 1)

    def __getitem__(self, i: int) -> dict:
        others = self.partners(i)
        j = int(others[torch.randint(len(others), ()).item()]) if len(others) else i
        return {"index": i, "view1": self.augment(self.raw(i)), "view2": self.augment(self.raw(j))}


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
