"""``build_index``: stream items through a model into a new index folder, swapped in atomically.

Indexes live in ``indexes/NAME/`` under the project root (``$MMSSL_INDEX_DIR`` overrides); a path
with a ``/`` is used as given. A build has two folders beside the index:

* ``indexes/.NAME.build/`` -- the embeddings, written chunk by chunk (:mod:`mmssl.index.chunks`).
  It survives a crash or Ctrl-C: running the same build again (same model, same items) reuses
  every complete chunk and embeds only the rest. It is deleted after a successful build.
* ``indexes/.NAME.tmp-<pid>/`` -- the new index (FAISS file, SQLite, manifest), renamed into place
  only when complete, so a crash mid-build leaves the previous index intact and loadable.

Memory stays bounded: one chunk of items and vectors at a time while embedding, then the FAISS
index is filled chunk by chunk from memory-mapped files (IVF/PQ train on a sample of rows).

Sharded builds: launched by ``torchrun`` (or inside an initialised ``torch.distributed`` group),
every process reads the same item stream, process ``r`` embeds chunks ``r, r + W, r + 2W, ...``
into the shared work folder, and after a barrier process 0 merges all chunks in input order,
writes the metadata and swaps the index in; the result is the single-process index::

    torchrun --nproc_per_node 2 -m mmssl index build code --model models/code-default --corpus code

(one machine, or several sharing the ``indexes/`` file system). A gloo group is created when
torchrun started the processes and nobody has yet; GPUs are used for embedding through the model.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import faiss
import numpy as np

from mmssl.index import faiss_index
from mmssl.index.atomic_folder import replace_folder, temp_folder
from mmssl.index.chunks import DEFAULT_CHUNK_SIZE, ChunkStore, embed_chunk, plan_chunks
from mmssl.index.embedding import DEFAULT_BATCH_SIZE, check_model_for_kind, model_encoding
from mmssl.index.errors import EmptyIndexError
from mmssl.index.index import FAISS_FILE, META_FILE, Index, load_index, now_iso
from mmssl.index.items import IndexItem
from mmssl.index.manifest import IndexManifest, write_manifest
from mmssl.index.metadata import MetadataStore

# Ranks wait for each other while process 0 builds a large HNSW graph; the default 30 min is too short.
SHARDED_TIMEOUT_MINUTES = 12 * 60


def indexes_root() -> Path:
    env = os.environ.get("MMSSL_INDEX_DIR")
    if env:
        return Path(env).expanduser().resolve()
    from mmssl.data.paths import PROJECT_ROOT

    return PROJECT_ROOT / "indexes"


def index_folder(name_or_folder: str | Path) -> Path:
    """``"emoji"`` -> ``<indexes root>/emoji``; anything with a path separator is a folder as given."""
    text = str(name_or_folder)
    if not text or text in (".", ".."):
        raise ValueError(f"bad index name {text!r}; pass a name like 'emoji' or a folder like indexes/emoji")
    if isinstance(name_or_folder, Path) or os.sep in text or "/" in text:
        return Path(name_or_folder).expanduser().resolve()
    return indexes_root() / text


def default_kind(model) -> str:
    return "image" if model.kind == "image-text" else "code"


def work_folder(folder: Path) -> Path:
    """Where a build of ``folder`` keeps its embedding chunks until it succeeds (``.NAME.build``)."""
    return folder.parent / f".{folder.name}.build"


def build_world() -> tuple[int, int]:
    """(rank, world size) of this build: torchrun's process group (joined here, gloo, when torchrun
    started us and no group exists yet), an already initialised group, or (0, 1)."""
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not launched and "torch.distributed" not in sys.modules:
        return 0, 1  # never import torch for a plain single-process build
    import torch

    from mmssl.train.distributed import init_distributed, world_info

    # gloo whatever the model's device: the build only needs barriers, never tensors on the wire
    world = init_distributed(torch.device("cpu"), timeout_minutes=SHARDED_TIMEOUT_MINUTES) if launched else world_info()
    return world.rank, world.world_size


def _barrier(world_size: int) -> None:
    if world_size > 1:
        from mmssl.train.distributed import barrier

        barrier()


def build_index(name_or_folder: str | Path, model, items: Iterable[IndexItem], kind: str | None = None,
                factory: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE, *,
                source: dict | None = None, progress: bool = True, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Index:
    """Embed ``items`` with ``model`` and write a complete index, replacing any old one atomically.

    Resumable: an interrupted build, run again with the same model and items, reuses the chunks of
    embeddings it already wrote. Sharded under torchrun (see the module docstring): every process
    calls this with the same arguments and gets the same loaded index back.

    Args:
        name_or_folder: an index name (``indexes/NAME``) or a folder.
        model: a :class:`~mmssl.RetrievalModel` (or anything with ``kind``, ``fingerprint``,
            ``embed_dim``, ``path`` and the ``encode_*`` methods).
        items: :class:`IndexItem` s, streamed (see :mod:`mmssl.index.sources`); every process of a
            sharded build must see the same items in the same order.
        kind: ``"image"``, ``"code"`` or ``"text"``; default from the model (image or code).
        factory: a FAISS factory string (``"Flat"``, ``"HNSW32"``, ``"IVF1024,PQ16"``); default by size
            (:func:`~mmssl.index.faiss_index.choose_factory`).
        batch_size: items per forward pass (a chunk is one model call, batched by token length).
        source: how to find the items again, stored in the manifest (``refresh`` reads ``folder``).
        chunk_size: items per chunk file: the most work an interruption loses, and the unit of sharding.

    Raises:
        EmptyIndexError: no items.
        IndexModelMismatchError: the model cannot embed ``kind`` items.
    """
    import hashlib

    from tqdm.auto import tqdm

    folder = index_folder(name_or_folder)
    kind = kind or default_kind(model)
    check_model_for_kind(model, kind)
    dim = int(model.embed_dim)
    rank, world_size = build_world()
    work = ChunkStore(work_folder(folder), model.fingerprint, kind, dim, model_encoding(model))
    tmp = temp_folder(folder) if rank == 0 else None
    try:
        store = MetadataStore(tmp / META_FILE, writable=True) if rank == 0 else None
        digest = hashlib.sha1()
        chunks: list[tuple[int, int, int]] = []  # (number, start, count) in input order
        total = len(items) if hasattr(items, "__len__") else None
        bar = tqdm(total=total, unit="item", disable=not progress, leave=False,
                   desc=f"embedding {kind}" + (f" (rank {rank}/{world_size})" if world_size > 1 else ""))
        counts = {"embedded": 0, "reused": 0}
        for chunk in plan_chunks(items, chunk_size, corpus_digest=digest):
            if store is not None:
                store.insert(range(chunk.start, chunk.start + len(chunk.items)), chunk.items)
            chunks.append((chunk.number, chunk.start, len(chunk.items)))
            if chunk.number % world_size != rank:
                bar.update(len(chunk.items))  # another process embeds this one
            elif work.has(chunk):
                counts["reused"] += len(chunk.items)
                bar.update(len(chunk.items))
            else:
                work.write(chunk, embed_chunk(model, kind, chunk, batch_size, on_batch=bar.update))  # (c, D)
                counts["embedded"] += len(chunk.items)
            bar.set_postfix(counts, refresh=False)
        bar.close()
        count = sum(c for _, _, c in chunks)
        if count == 0:
            raise EmptyIndexError(f"no items to index for {folder.name}: the source is empty (check the folder "
                                  "or corpus split)")
        _barrier(world_size)  # every chunk is on disk
        if rank == 0:
            factory = faiss_index.normalise_factory(factory) if factory else faiss_index.choose_factory(count, dim)
            _write_index_files(tmp, work, chunks, factory, dim)
            store.commit()
            store.close()
            from mmssl import __version__

            built_at = now_iso()
            write_manifest(IndexManifest(
                model_fingerprint=model.fingerprint, model_path=str(getattr(model, "path", "")),
                model_kind=model.kind, kind=kind, dim=dim, count=count, next_id=count, factory=factory,
                search_params=faiss_index.default_search_params(factory),
                corpus_hash=f"sha1:{digest.hexdigest()}", source=source or {}, built_at=built_at,
                updated_at=built_at, mmssl_version=__version__, encoding=model_encoding(model)), tmp)
            replace_folder(tmp, folder)
            work.remove()
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    _barrier(world_size)  # the new index is in place for everyone
    return load_index(folder, model)


def _write_index_files(tmp: Path, work: ChunkStore, chunks: list[tuple[int, int, int]], factory: str,
                       dim: int) -> None:
    """Train (on a sample) and fill a ``factory`` index from the chunk files, in input order."""
    count = sum(c for _, _, c in chunks)
    index = faiss_index.new_index(factory, dim)
    if not index.is_trained:
        faiss_index.train(index, work.sample(chunks, faiss_index.training_sample_size(factory, count)))
    for number, start, size in chunks:
        vectors = np.ascontiguousarray(work.load(number), dtype=np.float32)  # (c, D), one chunk in RAM
        index.add_with_ids(vectors, np.arange(start, start + size, dtype=np.int64))
    faiss.write_index(index, str(tmp / FAISS_FILE))
