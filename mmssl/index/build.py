"""``build_index``: stream items through a model into a new index folder, swapped in atomically.

Indexes live in ``indexes/NAME/`` under the project root (``$MMSSL_INDEX_DIR`` overrides); a path
with a ``/`` is used as given. The build writes ``indexes/.NAME.tmp-<pid>/`` and only renames it into
place when complete, so a crash mid-build leaves the previous index intact and loadable.
Embeddings accumulate as float32 (N, D); images are decoded one batch at a time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import faiss
import numpy as np

from mmssl.index import faiss_index
from mmssl.index.atomic_folder import replace_folder, temp_folder
from mmssl.index.embedding import DEFAULT_BATCH_SIZE, check_model_for_kind, embed_batches
from mmssl.index.errors import EmptyIndexError
from mmssl.index.index import FAISS_FILE, META_FILE, Index, load_index, now_iso
from mmssl.index.items import IndexItem
from mmssl.index.manifest import IndexManifest, write_manifest
from mmssl.index.metadata import MetadataStore


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


def build_index(name_or_folder: str | Path, model, items: Iterable[IndexItem], kind: str | None = None,
                factory: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE, *,
                source: dict | None = None, progress: bool = True) -> Index:
    """Embed ``items`` with ``model`` and write a complete index, replacing any old one atomically.

    Args:
        name_or_folder: an index name (``indexes/NAME``) or a folder.
        model: a :class:`~mmssl.RetrievalModel` (or anything with ``kind``, ``fingerprint``,
            ``embed_dim``, ``path`` and the ``encode_*`` methods).
        items: :class:`IndexItem` s, streamed (see :mod:`mmssl.index.sources`).
        kind: ``"image"``, ``"code"`` or ``"text"``; default from the model (image or code).
        factory: a FAISS factory string (``"Flat"``, ``"HNSW32"``, ``"IVF1024,PQ16"``); default by size
            (:func:`~mmssl.index.faiss_index.choose_factory`).
        source: how to find the items again, stored in the manifest (``refresh`` reads ``folder``).

    Raises:
        EmptyIndexError: no items.
        IndexModelMismatchError: the model cannot embed ``kind`` items.
    """
    from mmssl import __version__

    folder = index_folder(name_or_folder)
    kind = kind or default_kind(model)
    check_model_for_kind(model, kind)
    dim = int(model.embed_dim)
    tmp = temp_folder(folder)
    try:
        store = MetadataStore(tmp / META_FILE, writable=True)
        digest = hashlib.sha1()
        chunks: list[np.ndarray] = []
        count = 0
        for batch, vectors in embed_batches(model, kind, items, batch_size, progress=progress,
                                            corpus_digest=digest):
            store.insert(range(count, count + len(batch)), batch)
            chunks.append(faiss_index.normalised(vectors))  # (b, D)
            count += len(batch)
        if count == 0:
            raise EmptyIndexError(f"no items to index for {folder.name}: the source is empty (check the folder "
                                  "or corpus split)")
        vectors = np.concatenate(chunks)  # (N, D)
        del chunks
        factory = faiss_index.normalise_factory(factory) if factory else faiss_index.choose_factory(count, dim)
        index = faiss_index.new_index(factory, dim)
        faiss_index.fill(index, vectors, np.arange(count, dtype=np.int64))
        store.commit()
        store.close()
        faiss.write_index(index, str(tmp / FAISS_FILE))
        built_at = now_iso()
        write_manifest(IndexManifest(
            model_fingerprint=model.fingerprint, model_path=str(getattr(model, "path", "")),
            model_kind=model.kind, kind=kind, dim=dim, count=count, next_id=count, factory=factory,
            search_params=faiss_index.default_search_params(factory), corpus_hash=f"sha1:{digest.hexdigest()}",
            source=source or {}, built_at=built_at, updated_at=built_at, mmssl_version=__version__), tmp)
        replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_index(folder, model)
