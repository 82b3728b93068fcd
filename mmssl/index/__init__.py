"""FAISS indexes with SQLite metadata: build, load, search, add, delete, refresh.

An index is a folder ``indexes/NAME/`` holding ``index.faiss`` (an ``IDMap2`` FAISS index over
normalised embeddings, inner product), ``meta.sqlite`` (one row per FAISS id) and ``manifest.json``
(model fingerprint, kind, dim, factory, counts). Writes are atomic folder swaps.

Builds embed in resumable chunks (:mod:`mmssl.index.chunks`: a killed build, run again, embeds only
what is missing) and shard across processes under ``torchrun`` (:mod:`mmssl.index.build`). Filtered
searches hand FAISS an ``IDSelector`` of the filter's ids (:mod:`mmssl.index.filters`).
"""

from mmssl.index.build import build_index
from mmssl.index.errors import (EmptyIndexError, IndexBusyError, IndexCorruptError, IndexExistsError,
                                IndexModelMismatchError, IndexNeedsModelError, IndexNotFoundError, QueryShapeError)
from mmssl.index.faiss_index import choose_factory
from mmssl.index.index import Hit, Index, RefreshReport, load_index
from mmssl.index.items import IndexItem
from mmssl.index.layout import index_folder, indexes_root
from mmssl.index.manifest import IndexManifest, read_manifest
from mmssl.index.sources import code_corpus_items, code_folder_items, image_corpus_items, image_folder_items

__all__ = [
    "EmptyIndexError", "Hit", "Index", "IndexBusyError", "IndexCorruptError", "IndexExistsError", "IndexItem",
    "IndexManifest", "IndexModelMismatchError", "IndexNeedsModelError", "IndexNotFoundError", "QueryShapeError",
    "RefreshReport", "build_index", "choose_factory", "code_corpus_items", "code_folder_items", "image_corpus_items",
    "image_folder_items", "index_folder", "indexes_root", "load_index", "read_manifest",
]
