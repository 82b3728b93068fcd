"""Resumable, memory-bounded embedding for builds: vectors go to disk chunk by chunk, not to RAM.

A build cuts its item stream into chunks of ``chunk_size`` items, in input order, and writes each
chunk's embeddings to the build's work folder ``indexes/.NAME.build/``::

    chunk-000003.npy    float32 (c, D), rows L2-normalised
    chunk-000003.json   {"start", "count", "items", "model_fingerprint", "kind", "dim", "encoding"}

Each file is written atomically (temp + rename), the JSON last, so a chunk counts only once both
are complete. ``items`` is a SHA-1 over the chunk's item identities (path + file sha1, or path +
content hash for code and text) in order. A re-run of the same build (same model, same items)
finds the chunks it already wrote and reuses them instead of re-embedding: a build killed after
chunk 5 resumes at chunk 6. A chunk whose items or model changed is embedded again. The work folder
is deleted once the index is swapped in.

Memory stays bounded by one chunk: items are grouped ``chunk_size`` at a time (paths, not pixels;
the model decodes one batch of images at a time), a chunk's vectors are written and dropped, and
the index is later filled chunk by chunk from memory-mapped files.

Sharding: with ``world_size`` processes each reading the same item stream, process ``rank`` embeds
the chunks whose number is ``rank`` modulo ``world_size``; the chunk files are the same whichever
process wrote them, so merging them in chunk order gives a single-process build's matrix.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmssl.index.embedding import batches, encode
from mmssl.index.items import IndexItem
from mmssl.io import atomic_open, write_json

DEFAULT_CHUNK_SIZE = 4096


def item_identity(item: IndexItem) -> bytes:
    """What decides an item's embedding: its path and the sha1 of its file (or of its content)."""
    return (item.path + "\0" + (item.sha1 or hashlib.sha1(item.content.encode()).hexdigest()) + "\n").encode()


@dataclass
class Chunk:
    """``items`` at positions ``start .. start + len(items)`` of the stream; ``digest`` of their identities."""

    number: int
    start: int
    items: list[IndexItem]
    digest: str


def plan_chunks(items: Iterable[IndexItem], chunk_size: int, corpus_digest=None) -> Iterator[Chunk]:
    """Group the stream into chunks (only one chunk of items is held), updating ``corpus_digest``."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    start = 0
    for number, group in enumerate(batches(items, chunk_size)):
        digest = hashlib.sha1()
        for item in group:
            identity = item_identity(item)
            digest.update(identity)
            if corpus_digest is not None:
                corpus_digest.update(identity)
        yield Chunk(number, start, group, digest.hexdigest())
        start += len(group)


class ChunkStore:
    """The work folder of one build: chunk files of (c, D) normalised float32 embeddings."""

    def __init__(self, folder: Path, model_fingerprint: str, kind: str, dim: int, encoding: str = "fp32"):
        self.folder = Path(folder)
        self.expected = {"model_fingerprint": model_fingerprint, "kind": kind, "dim": int(dim), "encoding": encoding}
        self.folder.mkdir(parents=True, exist_ok=True)

    def _paths(self, number: int) -> tuple[Path, Path]:
        return self.folder / f"chunk-{number:06d}.npy", self.folder / f"chunk-{number:06d}.json"

    def has(self, chunk: Chunk) -> bool:
        """Whether a complete chunk file of the same items, model and position exists."""
        array_path, info_path = self._paths(chunk.number)
        if not info_path.is_file() or not array_path.is_file():
            return False
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False
        wanted = {**self.expected, "start": chunk.start, "count": len(chunk.items), "items": chunk.digest}
        return all(info.get(key) == value for key, value in wanted.items())

    def write(self, chunk: Chunk, vectors: np.ndarray) -> None:
        """Store ``vectors`` (c, D) for ``chunk``: array first, then its JSON, each temp + rename."""
        array_path, info_path = self._paths(chunk.number)
        with atomic_open(array_path, "wb") as handle:
            np.save(handle, np.ascontiguousarray(vectors, dtype=np.float32))
        info = {**self.expected, "start": chunk.start, "count": len(chunk.items), "items": chunk.digest}
        write_json(info_path, info)

    def load(self, number: int) -> np.ndarray:
        """Chunk ``number``'s vectors (c, D), memory-mapped (read on demand, not copied into RAM)."""
        return np.load(self._paths(number)[0], mmap_mode="r")

    def sample(self, chunks: Sequence[tuple[int, int, int]], size: int, seed: int = 0) -> np.ndarray:
        """``size`` rows drawn without replacement from chunks ``(number, start, count)``: (size, D).

        Only the sampled rows are read, so training an IVF/PQ index never loads the whole matrix.
        """
        total = sum(count for _, _, count in chunks)
        rows = np.sort(np.random.default_rng(seed).choice(total, size=min(size, total), replace=False))  # (S,)
        parts = []
        for number, start, count in chunks:
            inside = rows[(rows >= start) & (rows < start + count)] - start
            if len(inside):
                parts.append(np.asarray(self.load(number)[inside]))  # (s, D)
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def completed_items(self) -> int:
        """How many items the complete chunks in the folder hold (what a resumed build would reuse)."""
        total = 0
        for info_path in self.folder.glob("chunk-*.json"):
            try:
                total += int(json.loads(info_path.read_text(encoding="utf-8")).get("count", 0))
            except (OSError, ValueError, TypeError):
                continue
        return total

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def embed_chunk(model, kind: str, chunk: Chunk, batch_size: int, on_batch=None) -> np.ndarray:
    """Embed one chunk in one model call (batched by token length over the whole chunk): (c, D) unit rows."""
    return encode(model, kind, [item.content for item in chunk.items], batch_size, on_batch)
