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
from collections.abc import Callable, Iterable
from pathlib import Path

import faiss
import numpy as np

from mmssl.index import faiss_index
from mmssl.index.lock import writer_lock
from mmssl.index.chunks import DEFAULT_CHUNK_SIZE, ChunkStore, embed_chunk, plan_chunks
from mmssl.index.embedding import DEFAULT_BATCH_SIZE, check_model_for_kind, model_encoding
from mmssl.index.errors import EmptyIndexError, IndexExistsError
from mmssl.index.index import Index, load_index, now_iso
from mmssl.index.items import ITEM_KIND_FOR_SOURCE, IndexItem
from mmssl.index.layout import FAISS_FILE, MANIFEST_FILE, META_FILE, index_folder, indexes_root, work_folder  # noqa: F401
from mmssl.index.manifest import IndexManifest, write_manifest
from mmssl.index.metadata import MetadataStore
from mmssl.io import replace_folder, temp_folder

# Ranks wait for each other while process 0 builds a large HNSW graph; the default 30 min is too short.
SHARDED_TIMEOUT_MINUTES = 12 * 60


def default_kind(model) -> str:
    return "image" if model.kind == "image-text" else "code"


def build_world() -> tuple[int, int]:
    """(rank, world size) of this build: torchrun's process group (joined here, gloo, when torchrun
    started us and no group exists yet), an already initialised group, or (0, 1)."""
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not launched and "torch.distributed" not in sys.modules:
        return 0, 1  # never import torch for a plain single-process build
    import torch

    from mmssl.distributed import init_distributed, world_info

    # gloo whatever the model's device: the build only needs barriers, never tensors on the wire
    world = init_distributed(torch.device("cpu"), timeout_minutes=SHARDED_TIMEOUT_MINUTES) if launched else world_info()
    return world.rank, world.world_size


def _barrier(world_size: int) -> None:
    if world_size > 1:
        from mmssl.distributed import barrier

        barrier()


def build_index(name_or_folder: str | Path, model, items: Iterable[IndexItem], kind: str | None = None,
                factory: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE, *,
                source: dict | None = None, progress: bool = True, chunk_size: int = DEFAULT_CHUNK_SIZE,
                replace: bool = True, keep_work: bool = False,
                on_progress: Callable[[int, int | None], None] | None = None) -> Index:
    """Embed ``items`` with ``model`` and write a complete index, replacing any old one atomically.

    Resumable: an interrupted build, run again with the same model and items, reuses the chunks of
    embeddings it already wrote. Sharded under torchrun (see the module docstring): every process
    calls this with the same arguments and gets the same loaded index back. One build or write of
    a name at a time (:func:`~mmssl.index.lock.writer_lock`).

    Args:
        name_or_folder: an index name (``indexes/NAME``) or a folder.
        model: a :class:`~mmssl.RetrievalModel` (or anything with ``kind``, ``fingerprint``,
            ``embed_dim``, ``path`` and the ``encode_*`` methods).
        items: :class:`IndexItem` s, streamed (see :mod:`mmssl.index.sources`); every process of a
            sharded build must see the same items in the same order.
        kind: ``"image"``, ``"code"`` or ``"text"``; default from ``source["type"]`` (an image folder
            holds images whatever the model), else from the model (image or code).
        factory: a FAISS factory string (``"Flat"``, ``"HNSW32"``, ``"IVF1024,PQ16"``); default by size
            (:func:`~mmssl.index.faiss_index.choose_factory`).
        batch_size: items per forward pass (a chunk is one model call, batched by token length).
        source: how to find the items again, stored in the manifest (``refresh`` reads ``folder``).
        chunk_size: items per chunk file: the most work an interruption loses, and the unit of sharding.
        replace: False: refuse (:class:`IndexExistsError`) when an index of that name exists.
        keep_work: keep the chunk files after the swap, for a staged build whose next, larger item list
            starts with these items (:func:`~mmssl.index.staged.build_staged`): it embeds only the rest.
        on_progress: called with ``(items done, total or None)`` as chunks are reused or embedded.

    Raises:
        EmptyIndexError: no items.
        IndexModelMismatchError: the model cannot embed ``kind`` items (raised before anything is embedded).
        IndexExistsError: ``replace=False`` and the index exists.
        IndexBusyError: another build or write of this index is running.
    """
    folder = index_folder(name_or_folder)
    kind = kind or ITEM_KIND_FOR_SOURCE.get((source or {}).get("type")) or default_kind(model)
    check_model_for_kind(model, kind)
    rank, world_size = build_world()
    options = dict(kind=kind, factory=factory, batch_size=batch_size, source=source, progress=progress,
                   chunk_size=chunk_size, keep_work=keep_work, on_progress=on_progress, rank=rank,
                   world_size=world_size)
    if rank != 0:  # process 0 holds the lock and does the checks for the whole sharded build
        return _build(folder, model, items, **options)
    with writer_lock(folder):
        if not replace and (folder / MANIFEST_FILE).exists():
            raise IndexExistsError(f"an index named {folder.name} already exists ({folder}); choose another name, "
                                   "or ask to replace it (--replace, or replace=True)")
        return _build(folder, model, items, **options)


def _build(folder: Path, model, items, *, kind, factory, batch_size, source, progress, chunk_size, keep_work,
           on_progress, rank, world_size) -> Index:
    import hashlib

    from tqdm.auto import tqdm

    dim = int(model.embed_dim)
    work = ChunkStore(work_folder(folder), model.fingerprint, kind, dim, model_encoding(model))
    tmp = temp_folder(folder) if rank == 0 else None
    store = None
    try:
        store = MetadataStore(tmp / META_FILE, writable=True) if rank == 0 else None
        digest = hashlib.sha1()
        chunks: list[tuple[int, int, int]] = []  # (number, start, count) in input order
        total = len(items) if hasattr(items, "__len__") else None
        bar = tqdm(total=total, unit="item", disable=not progress, leave=False,
                   desc=f"embedding {kind}" + (f" (rank {rank}/{world_size})" if world_size > 1 else ""))

        done = [0]  # items so far (a disabled bar does not count)

        def advance(count: int) -> None:
            bar.update(count)
            done[0] += count
            if on_progress is not None:
                on_progress(done[0], total)

        counts = {"embedded": 0, "reused": 0}
        for chunk in plan_chunks(items, chunk_size, corpus_digest=digest):
            if store is not None:
                store.insert(range(chunk.start, chunk.start + len(chunk.items)), chunk.items)
            chunks.append((chunk.number, chunk.start, len(chunk.items)))
            if chunk.number % world_size != rank:
                advance(len(chunk.items))  # another process embeds this one
            elif work.has(chunk):
                counts["reused"] += len(chunk.items)
                advance(len(chunk.items))
            else:
                work.write(chunk, embed_chunk(model, kind, chunk, batch_size, on_batch=advance))  # (c, D)
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
            from mmssl._version import __version__

            built_at = now_iso()
            write_manifest(IndexManifest(
                model_fingerprint=model.fingerprint, model_path=str(getattr(model, "path", "")),
                model_kind=model.kind, kind=kind, dim=dim, count=count, next_id=count, factory=factory,
                search_params=faiss_index.default_search_params(factory),
                corpus_hash=f"sha1:{digest.hexdigest()}", source=source or {}, built_at=built_at,
                updated_at=built_at, mmssl_version=__version__, encoding=model_encoding(model)), tmp)
            replace_folder(tmp, folder)
            if not keep_work:
                work.remove()
    except BaseException as e:
        if store is not None:  # an open connection to a deleted file breaks the next build's SQLite
            store.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if rank == 0:
            _keep_or_drop_work(work, folder, e)
        raise
    _barrier(world_size)  # the new index is in place for everyone
    return load_index(folder, model)


def _keep_or_drop_work(work: ChunkStore, folder: Path, error: BaseException) -> None:
    """After a failed build: keep the work folder only if it holds embedded chunks worth resuming from,
    and say so on stderr; an empty one is removed."""
    done = work.completed_items()
    if not done:
        work.remove()
        return
    print(f"index build {folder.name} stopped ({type(error).__name__}); {done} embedded items are kept in "
          f"{work.folder}: run the same build again to resume from them, or delete that folder",
          file=sys.stderr)


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
