"""Streaming items through a model in batches: bounded memory, a progress bar, float32 rows out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from mmssl.index.errors import IndexModelMismatchError
from mmssl.index.items import ITEM_KINDS, MODEL_KIND_FOR_ITEM, IndexItem

DEFAULT_BATCH_SIZE = 256


def check_model_for_kind(model, kind: str) -> None:
    if kind not in ITEM_KINDS:
        raise ValueError(f"unknown item kind {kind!r}; expected one of {', '.join(ITEM_KINDS)}")
    if model.kind != MODEL_KIND_FOR_ITEM[kind]:
        raise IndexModelMismatchError(f"{getattr(model, 'path', 'the model')} is a {model.kind} model: it cannot "
                                      f"embed {kind} items; use a {MODEL_KIND_FOR_ITEM[kind]} model (e.g. models/"
                                      f"{'code' if kind == 'code' else 'clip'}-default)")


def encode(model, kind: str, contents: list[str]) -> np.ndarray:
    """``contents`` -> (b, E) float32 through the model's tower for ``kind``."""
    if kind == "image":
        vectors = model.encode_image(contents)
    elif kind == "code":
        vectors = model.encode_code(contents)
    else:
        vectors = model.encode_text(contents)
    vectors = np.asarray(vectors, dtype=np.float32)  # (b, E)
    if vectors.shape != (len(contents), model.embed_dim):
        raise ValueError(f"model returned shape {vectors.shape} for {len(contents)} {kind} items, expected "
                         f"({len(contents)}, {model.embed_dim})")
    return vectors


def batches(items: Iterable[IndexItem], batch_size: int) -> Iterator[list[IndexItem]]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch: list[IndexItem] = []
    for item in items:
        if not isinstance(item, IndexItem):
            raise TypeError(f"index items must be IndexItem, got {type(item).__name__}; build them with "
                            "mmssl.index.sources (image_folder_items, code_folder_items, ...)")
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def embed_batches(model, kind: str, items: Iterable[IndexItem], batch_size: int = DEFAULT_BATCH_SIZE,
                  *, progress: bool = True) -> Iterator[tuple[list[IndexItem], np.ndarray]]:
    """Yield (items, vectors (b, E)) one batch at a time; only one batch of images is ever decoded.

    Used by ``Index.add``/``refresh``; whole builds go through :mod:`mmssl.index.chunks` (resumable).
    """
    from tqdm.auto import tqdm

    total = None
    if hasattr(items, "__len__"):
        total = -(-len(items) // batch_size)
    bar = tqdm(batches(items, batch_size), total=total, desc=f"embedding {kind}", unit="batch",
               disable=not progress, leave=False)
    for batch in bar:
        yield batch, encode(model, kind, [item.content for item in batch])
