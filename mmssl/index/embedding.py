"""Streaming items through a model in batches: bounded memory, a progress bar, float32 rows out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from mmssl.index.errors import IndexModelMismatchError
from mmssl.index.items import ITEM_KINDS, MODEL_KIND_FOR_ITEM, IndexItem

DEFAULT_BATCH_SIZE = 64  # strings per forward pass (after bucketing by token length)


def check_model_for_kind(model, kind: str) -> None:
    if kind not in ITEM_KINDS:
        raise ValueError(f"unknown item kind {kind!r}; expected one of {', '.join(ITEM_KINDS)}")
    if model.kind != MODEL_KIND_FOR_ITEM[kind]:
        raise IndexModelMismatchError(f"{getattr(model, 'path', 'the model')} is a {model.kind} model: it cannot "
                                      f"embed {kind} items; use a {MODEL_KIND_FOR_ITEM[kind]} model (e.g. models/"
                                      f"{'code' if kind == 'code' else 'clip'}-default)")


def model_encoding(model) -> str:
    """``model.encoding`` (``"fp32"`` for models without one, e.g. a test double)."""
    return getattr(model, "encoding", "fp32")


def with_encoding(model, encoding: str):
    """``model`` running ``encoding``: ``model.with_encoding(encoding)`` for a model that has several, the
    model itself for one without (a test double, which has only ``"fp32"``)."""
    if hasattr(model, "with_encoding"):
        return model.with_encoding(encoding)
    return model


def encode(model, kind: str, contents: list[str], batch_size: int = DEFAULT_BATCH_SIZE,
           on_batch=None) -> np.ndarray:
    """``contents`` -> (c, E) float32 unit rows through the model's tower for ``kind``.

    A :class:`~mmssl.RetrievalModel` encodes them in one call, batched by token length over all of
    ``contents`` (``on_batch`` called per batch of ``batch_size``); a model without ``encode_items``
    (a test double) is called once per ``batch_size`` slice.
    """
    method = {"image": model.encode_image, "code": model.encode_code}.get(kind, model.encode_text)
    if hasattr(model, "encode_items"):
        vectors = method(contents, batch_size=batch_size, on_batch=on_batch)
    else:
        parts = []
        for start in range(0, len(contents), batch_size):
            parts.append(np.asarray(method(contents[start:start + batch_size]), dtype=np.float32))  # (b, E)
            if on_batch is not None:
                on_batch(len(parts[-1]))
        vectors = np.concatenate(parts) if parts else np.zeros((0, model.embed_dim), np.float32)
    vectors = np.asarray(vectors, dtype=np.float32)  # (c, E)
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
        yield batch, encode(model, kind, [item.content for item in batch], batch_size)
