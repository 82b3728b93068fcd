"""Training pairs for the dual encoders: (caption, image) and (docstring, code), as torch datasets.

A sample is a dict with one entry per side: ``"query"`` (a string, tokenised in the collate
function) or ``"query_features"`` (a (D,) row precomputed by a locked tower, see
:class:`mmssl.encoders.cache.FeatureCache`), and ``"item"`` (an image tensor made by the image
tower's train transform, or a code string). :class:`PairCollator` stacks tensors and tokenises
strings, so the trainer receives exactly what :meth:`DualEncoder.loss` takes.

Images are decoded once into one uint8 array (N, S, S, 3): 8,000 corpus images at 128 px are
~400 MB, far cheaper than decoding PNGs every epoch.
"""

from __future__ import annotations

import random
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from mmssl.data.imageio import IMAGE_SIZE, open_image, to_square_rgb


def caption_choices(records: list[dict]) -> list[list[str]]:
    """Each record's captions, its name first (``text``), then the others without repeats."""
    out = []
    for r in records:
        seen, captions = set(), []
        for c in [r["text"], *r.get("captions", [])]:
            c = " ".join(str(c).split())
            if c and c.lower() not in seen:
                seen.add(c.lower())
                captions.append(c)
        out.append(captions)
    return out


def load_images(paths: list[str], size: int = IMAGE_SIZE) -> np.ndarray:
    """Decode images once into a (N, size, size, 3) uint8 array (corpus images already are size²)."""
    from tqdm.auto import tqdm

    array = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(tqdm(paths, desc="decoding images", unit="img", leave=False)):
        image = open_image(path)
        if image.size != (size, size) or image.mode != "RGB":
            image = to_square_rgb(image, size)
        array[i] = np.asarray(image)
    return array


class ImageTextPairs(Dataset):
    """(caption, image) pairs; the caption is the name with probability ``1 - keyword_prob``,
    else one of the other captions (keywords, aliases) — a text-side augmentation.

    Args:
        images: (N, S, S, 3) uint8, see :func:`load_images`.
        captions: per image, its captions (name first), see :func:`caption_choices`.
        transform: PIL image -> (3, s, s) tensor (the image tower's ``transform(train=True)``).
        caption_features: optional mapping caption -> row of ``feature_matrix`` (locked text tower).
    """

    def __init__(self, images: np.ndarray, captions: list[list[str]], transform: Callable,
                 keyword_prob: float = 0.3, caption_rows: dict[str, int] | None = None,
                 feature_matrix: torch.Tensor | None = None):
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but {len(captions)} caption lists")
        self.images, self.captions, self.transform = images, captions, transform
        self.keyword_prob, self.caption_rows, self.feature_matrix = keyword_prob, caption_rows, feature_matrix

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        captions = self.captions[i]
        caption = captions[0]
        if len(captions) > 1 and random.random() < self.keyword_prob:
            caption = random.choice(captions[1:])
        sample = {"item": self.transform(Image.fromarray(self.images[i]))}  # (3, s, s)
        if self.feature_matrix is not None:
            sample["query_features"] = self.feature_matrix[self.caption_rows[caption]]  # (D,)
        else:
            sample["query"] = caption
        return sample


class CodePairs(Dataset):
    """(docstring, code) pairs; ``query_features`` (N, D) replaces the docstring for a locked query tower,
    and ``item_states`` (a :class:`~mmssl.encoders.cache.StateCache` holding every code) replaces the
    code by its frozen-part token states (L, H) for a partially frozen item tower."""

    def __init__(self, docstrings: list[str], codes: list[str], query_features: torch.Tensor | None = None,
                 item_states=None):
        if len(docstrings) != len(codes):
            raise ValueError(f"{len(docstrings)} docstrings but {len(codes)} functions")
        self.docstrings, self.codes, self.query_features = docstrings, codes, query_features
        self.item_states = item_states

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> dict:
        if self.item_states is not None:
            sample = {"item_states": self.item_states.states(self.codes[i])}  # (L, H) float16
        else:
            sample = {"item": self.codes[i]}
        if self.query_features is not None:
            sample["query_features"] = self.query_features[i]  # (D,)
        else:
            sample["query"] = self.docstrings[i]
        return sample


class PairCollator:
    """List of samples -> batch: tensors stacked, strings tokenised by the side's tower, and ragged
    ``{side}_states`` (L_i, H) padded to ``{side}_states`` (B, L, H) float32 with
    ``{side}_states_mask`` (B, L)."""

    def __init__(self, query_tokenize: Callable | None = None, item_tokenize: Callable | None = None):
        self.tokenize = {"query": query_tokenize, "item": item_tokenize}

    def __call__(self, samples: list[dict]) -> dict:
        batch = {}
        for key in samples[0]:
            values = [s[key] for s in samples]
            if key.endswith("_states"):
                batch[key], batch[f"{key}_mask"] = pad_states(values)
            elif isinstance(values[0], str):
                if self.tokenize.get(key) is None:
                    raise ValueError(f"batch[{key!r}] holds strings but no tokenizer was given for that side")
                batch[key] = self.tokenize[key](values)
            else:
                batch[key] = torch.stack(values)  # (B, ...)
        return batch


def pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged (L_i, H) token states -> ((B, L, H) float32 zero-padded, (B, L) long attention mask)."""
    lengths = torch.tensor([len(s) for s in states])  # (B,)
    padded = torch.nn.utils.rnn.pad_sequence([s.float() for s in states], batch_first=True)  # (B, L, H)
    mask = (torch.arange(padded.shape[1]) < lengths[:, None]).long()  # (B, L)
    return padded, mask
