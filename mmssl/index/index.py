"""A built index on disk (``index.faiss`` + ``meta.sqlite`` + ``manifest.json``) and what you do with it.

    index = load_index("indexes/emoji", model)          # model optional for search by vectors
    hits = index.search(model.encode_text(["a red fire truck"]), k=10, filter={"folder": "vehicles"})
    hits[0][0].score, hits[0][0].metadata["path"]
    index.add(items); index.delete(["/photos/old.png"]); index.refresh()   # image folders

Every write builds the whole new folder beside the old one and swaps it in
(:mod:`mmssl.io`), so a crash mid-write leaves the previous index loadable.

Deletes: Flat and IVF remove ids from FAISS and rows from SQLite. HNSW graphs cannot remove ids, so
their deletes are tombstones (``deleted = 1``) filtered out at search time; once tombstones exceed
20 % of the stored vectors the write rebuilds the HNSW graph from its own stored vectors (no
re-embedding) and drops the tombstoned rows. Ids are never reused (``manifest.next_id``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from mmssl.index import faiss_index
from mmssl.index.lock import writer_lock
from mmssl.index.embedding import DEFAULT_BATCH_SIZE, check_model_for_kind, embed_batches, model_encoding
from mmssl.index.errors import (REBUILD_HINT, IndexCorruptError, IndexModelMismatchError, IndexNeedsModelError,
                                IndexNotFoundError, QueryShapeError)
from mmssl.index.filters import Filter, check_filter
from mmssl.index.items import IndexItem, RefreshReport, file_sha1
from mmssl.index.layout import FAISS_FILE, META_FILE, index_folder
from mmssl.index.manifest import IndexManifest, read_manifest, rebuild_command, write_manifest
from mmssl.index.metadata import MetadataStore
from mmssl.io import recover_folder, replace_folder, temp_folder

FILTER_CACHE_SIZE = 32  # dict filters whose matching ids are kept (a UI repeats its filters)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class Hit:
    """One search result: the FAISS id, the score and the item's metadata (``path`` included).

    A hybrid hit's ``score`` is the fused one; ``dense`` (its cosine, None when it was not among the dense
    candidates) and ``lexical`` (its BM25 score) say what each side gave it."""

    id: int
    score: float
    metadata: dict
    dense: float | None = None
    lexical: float | None = None

    def to_dict(self) -> dict:
        """``{"id", "score", **metadata}`` plus ``dense``/``lexical`` when known: one hit as JSON (CLI, REST)."""
        sides = {name: value for name, value in (("dense", self.dense), ("lexical", self.lexical)) if value is not None}
        return {"id": self.id, "score": self.score, **self.metadata, **sides}


class Index:
    """A loaded index. Search needs no model; ``add``/``refresh`` need the model it was built with."""

    def __init__(self, folder: Path, manifest: IndexManifest, faiss_index_: faiss.IndexIDMap2,
                 store: MetadataStore, model=None):
        self.folder = folder
        self.manifest = manifest
        self.faiss_index = faiss_index_
        self.store = store
        self.model = model
        self._filter_ids: OrderedDict[str, np.ndarray] = OrderedDict()  # canonical dict filter -> ids

    def __repr__(self) -> str:
        m = self.manifest
        return f"Index({str(self.folder)!r}, kind={m.kind!r}, count={m.count}, factory={m.factory!r}, dim={m.dim})"

    def __len__(self) -> int:
        return self.manifest.count

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ search

    def search(self, query_vectors: np.ndarray, k: int = 10, filter: Filter | None = None) -> list[list[Hit]]:
        """Best ``k`` live items for each query row, best first, optionally filtered by metadata.

        Args:
            query_vectors: (Q, D) or (D,) float; normalised here, so raw model output is fine.
            filter: see :mod:`mmssl.index.filters`. The matching ids go to FAISS as an ``IDSelector``
                (:func:`mmssl.index.faiss_index.search`), so the hits are the best ``k`` of the filter,
                however few items it keeps: ``k`` hits whenever the filter matches ``k`` items.

        Returns:
            Q lists of up to ``k`` :class:`Hit`.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        check_filter(filter)
        queries = np.asarray(query_vectors, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]  # (1, D)
        if queries.ndim != 2 or queries.shape[1] != self.manifest.dim:
            raise QueryShapeError(f"query vectors have shape {queries.shape}; this index needs (Q, "
                                  f"{self.manifest.dim}): encode the query with the index's model "
                                  f"({self.manifest.model_path})")
        queries = faiss_index.normalised(queries)  # (Q, D)
        if self.faiss_index.ntotal == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        allowed = excluded = None
        if filter is not None:
            allowed = self._matching_ids(filter)  # (M,) live ids of the filter, sorted
        elif self.manifest.count < self.faiss_index.ntotal:
            excluded = np.asarray(self.store.tombstoned_ids(), dtype=np.int64)  # (T,)
        scores, ids = faiss_index.search(self.faiss_index, queries, k, allowed=allowed, excluded=excluded)  # (Q, k)
        rows = self.store.rows(np.unique(ids[ids >= 0]).tolist())
        return [[Hit(int(i), float(score), {"path": rows[int(i)].path, **rows[int(i)].metadata})
                 for i, score in zip(id_row, score_row) if i >= 0 and int(i) in rows]
                for id_row, score_row in zip(ids, scores)]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored unit vectors of ``ids`` (M,) -> (M, D), in that order (near-duplicate collapse reads them)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.manifest.dim), np.float32)
        try:
            return self.faiss_index.reconstruct_batch(ids)
        except RuntimeError as e:
            raise ValueError(f"{self.folder} ({self.manifest.factory}) cannot return its stored vectors "
                             f"({str(e).strip().splitlines()[-1][:120]}); collapse near-duplicates by concept "
                             "instead") from None

    def _matching_ids(self, filter: Filter) -> np.ndarray:
        """The filter's live ids, cached for dict filters until the next write (SQLite scans every row)."""
        try:
            key = None if callable(filter) else json.dumps(filter, sort_keys=True)
        except TypeError:  # sets or other values JSON cannot spell canonically: no caching
            key = None
        if key is not None and key in self._filter_ids:
            self._filter_ids.move_to_end(key)
            return self._filter_ids[key]
        ids = self.store.matching_ids(filter)
        if key is not None:
            self._filter_ids[key] = ids
            if len(self._filter_ids) > FILTER_CACHE_SIZE:
                self._filter_ids.popitem(last=False)
        return ids

    # ------------------------------------------------------------------ what it holds

    def distinct_values(self, field: str) -> list:
        """The distinct values of a metadata field (``"repo"``, ``"source"``, ...), sorted; for filters."""
        return self.store.distinct_values(field)

    def item_paths(self) -> list[str]:
        """The ``path`` of every item, once (image files; source files for code)."""
        return self.store.distinct_paths()

    def indexed_folders(self) -> list[str]:
        """Every folder that directly holds an item's path, or the target of an item that is a symlink
        (real paths), sorted."""
        folders = set()
        for path in self.item_paths():
            folders.add(os.path.realpath(os.path.dirname(path)))
            folders.add(os.path.dirname(os.path.realpath(path)))
        return sorted(folders)

    # ------------------------------------------------------------------ writes

    def _need_model(self, action: str):
        if self.model is None:
            raise IndexNeedsModelError(f"Index.{action} embeds new items and needs the model: load the index with "
                                       f"load_index({str(self.folder)!r}, load_model({self.manifest.model_path!r}))")
        return self.model

    def add(self, items: Iterable[IndexItem], batch_size: int = DEFAULT_BATCH_SIZE) -> list[int]:
        """Embed and add ``items``; returns their new ids. One atomic write."""
        model = self._need_model("add")
        new_ids: list[int] = []

        def change(index, store, manifest):
            new_ids.extend(self._add_into(index, store, manifest, model, items, batch_size))

        self._write(change)
        return new_ids

    def delete(self, paths: Sequence[str | Path]) -> int:
        """Remove every item whose path is one of ``paths``; returns how many. Needs no model."""
        if isinstance(paths, (str, Path)):
            paths = [paths]
        wanted = set()
        for p in paths:
            wanted.add(str(p))
            wanted.add(str(Path(p).expanduser().resolve()))
        removed = []

        def change(index, store, manifest):
            ids = store.live_ids_for_paths(sorted(wanted))
            removed.extend(ids)
            self._remove_from(index, store, manifest, ids)

        if self.store.live_ids_for_paths(sorted(wanted)):
            self._write(change)
        return len(removed)

    def refresh(self, folder: str | Path | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> RefreshReport:
        """Bring an image-folder index up to date with its folder: add new files, re-embed changed ones
        (mtime changed *and* sha1 changed), drop vanished ones; unchanged files are not re-embedded.
        A code-folder index re-extracts its project and re-embeds only the functions whose embedded
        text changed (:mod:`mmssl.index.code_refresh`).
        """
        from mmssl.index.sources import image_record_item
        from mmssl.data.folder import scan_image_folder

        if self.manifest.kind == "code":  # a project folder: see mmssl.index.code_refresh
            from mmssl.index.code_refresh import refresh_code_index

            return refresh_code_index(self, folder, batch_size)
        if self.manifest.kind != "image":
            raise ValueError(f"refresh works on image-folder indexes; {self.folder} holds {self.manifest.kind} "
                             f"items: rebuild it with `{REBUILD_HINT} ...`")
        folder = folder or self.manifest.source.get("folder")
        if folder is None:
            raise ValueError(f"{self.folder} was not built from an image folder; pass refresh(folder=...)")
        folder = Path(folder).expanduser().resolve()
        records = {r["image"]: r for r in scan_image_folder(folder)}
        report = RefreshReport()
        known = {row.path: row for row in self.store.live_rows(str(folder) + os.sep)}
        stale_ids, fresh, mtime_only = [], [], []
        for path, row in known.items():
            record = records.get(path)
            if record is None:
                stale_ids.append(row.id)
                report.removed.append(path)
            elif record["mtime"] != row.mtime:
                sha1 = file_sha1(path)
                if sha1 != row.sha1:
                    stale_ids.append(row.id)
                    fresh.append(image_record_item(record, sha1=sha1))
                    report.reembedded.append(path)
                else:
                    mtime_only.append((row.id, record["mtime"]))
                    report.unchanged += 1
            else:
                report.unchanged += 1
        for path, record in records.items():
            if path not in known:
                fresh.append(image_record_item(record))
                report.added.append(path)
        self._replace_items(stale_ids, fresh, batch_size,
                            [lambda store, i=i, m=m: store.set_mtime(i, m) for i, m in mtime_only])
        return report

    # ------------------------------------------------------------------ internals

    def _replace_items(self, stale_ids: Sequence[int], fresh: list[IndexItem], batch_size: int,
                       updates: Sequence = ()) -> None:
        """One atomic write of a refresh: drop ``stale_ids``, apply each ``update(store)`` (row edits that
        need no embedding), embed and add ``fresh``. Nothing to do writes nothing."""
        if not (stale_ids or fresh or updates):
            return
        model = self._need_model("refresh") if fresh else self.model

        def change(index, store, manifest):
            self._remove_from(index, store, manifest, stale_ids)
            for update in updates:
                update(store)
            if fresh:
                self._add_into(index, store, manifest, model, fresh, batch_size)

        self._write(change)

    def _add_into(self, index, store, manifest, model, items, batch_size) -> list[int]:
        check_model_for_kind(model, manifest.kind)
        ids = []
        for batch, vectors in embed_batches(model, manifest.kind, items, batch_size):
            batch_ids = np.arange(manifest.next_id, manifest.next_id + len(batch), dtype=np.int64)  # (b,)
            index.add_with_ids(faiss_index.normalised(vectors), batch_ids)
            store.insert(batch_ids.tolist(), batch)
            manifest.next_id += len(batch)
            ids.extend(batch_ids.tolist())
        return ids

    @staticmethod
    def _remove_from(index, store, manifest, ids: Sequence[int]) -> None:
        if not ids:
            return
        if faiss_index.supports_remove(manifest.factory):
            index.remove_ids(np.asarray(ids, dtype=np.int64))
            store.remove(ids)
        else:
            store.tombstone(ids)

    def _write(self, change) -> None:
        """Copy, change, and swap in the whole index folder (see the module docstring), holding its writer lock."""
        with writer_lock(self.folder):
            self._write_locked(change)

    def _write_locked(self, change) -> None:
        tmp = temp_folder(self.folder)
        try:
            # a serialised copy, not clone_index: clone_index leaves IDMap2's reverse map empty (remove_ids aborts)
            index = faiss.deserialize_index(faiss.serialize_index(self.faiss_index))
            faiss_index.apply_search_params(index, self.manifest.search_params)
            store = self.store.copy_to(tmp / META_FILE)
            manifest = IndexManifest(**{**self.manifest.__dict__})
            change(index, store, manifest)
            tombstones = store.tombstoned_ids()
            if tombstones and len(tombstones) > faiss_index.TOMBSTONE_REBUILD_FRACTION * index.ntotal:
                index = _rebuild_without(index, tombstones, manifest)
                store.remove(tombstones)
            store.commit()
            manifest.count = store.count()
            manifest.updated_at = now_iso()
            store.close()
            faiss.write_index(index, str(tmp / FAISS_FILE))
            write_manifest(manifest, tmp)
            self.store.close()
            replace_folder(tmp, self.folder)
        except BaseException:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.faiss_index, self.manifest = index, manifest
        self._filter_ids.clear()
        self.store = MetadataStore(self.folder / META_FILE)


def _rebuild_without(index: faiss.IndexIDMap2, drop_ids: Sequence[int], manifest: IndexManifest):
    """A fresh index of the same factory holding every stored vector except ``drop_ids``."""
    ids, vectors = faiss_index.stored_vectors(index)  # (N,), (N, D)
    keep = ~np.isin(ids, np.asarray(drop_ids, dtype=np.int64))
    fresh = faiss_index.new_index(manifest.factory, manifest.dim)
    faiss_index.apply_search_params(fresh, manifest.search_params)
    faiss_index.fill(fresh, vectors[keep], ids[keep])
    return fresh


def load_index(folder: str | Path, model=None) -> Index:
    """Open a built index for search (and, with its model, for add/refresh).

    Raises:
        IndexNotFoundError: ``folder`` holds no index.
        IndexCorruptError: a file of the index cannot be read (truncated ``index.faiss``, a
            ``meta.sqlite`` that is not a database, a broken ``manifest.json``); the message names the
            file and the command that rebuilds the index.
        IndexModelMismatchError: ``model`` is not the model the index was built with (fingerprint or dim),
            or runs another encoding than the one that embedded the items.
    """
    folder = index_folder(folder)
    recover_folder(folder)
    manifest = read_manifest(folder)
    if model is not None:
        if model.fingerprint != manifest.model_fingerprint or int(model.embed_dim) != manifest.dim:
            raise IndexModelMismatchError(
                f"index {folder} was built with model {manifest.model_path} (fingerprint "
                f"{manifest.model_fingerprint}, dim {manifest.dim}); the given model has fingerprint "
                f"{model.fingerprint}, dim {model.embed_dim}. Search with the original model, or rebuild the "
                f"index for this one: `{REBUILD_HINT} {folder.name} --model {getattr(model, 'path', 'MODEL')} ...`")
        if model_encoding(model) != manifest.encoding:
            raise IndexModelMismatchError(
                f"index {folder} was embedded with encoding {manifest.encoding!r}, the given model runs "
                f"{model_encoding(model)!r}; queries must run as the items did: pass "
                f"model.with_encoding({manifest.encoding!r}) (or load_model(..., encoding={manifest.encoding!r}))")
    faiss_path = folder / FAISS_FILE
    if not faiss_path.is_file() or not (folder / META_FILE).is_file():
        raise IndexNotFoundError(f"{folder} is incomplete ({FAISS_FILE} or {META_FILE} missing); rebuild it with "
                                 f"`{rebuild_command(folder.name, manifest)}`")
    index = _read_faiss(faiss_path, manifest)
    faiss_index.apply_search_params(index, manifest.search_params)
    return Index(folder, manifest, index, _open_store(folder / META_FILE, manifest), model)


def _corrupt(path: Path, manifest: IndexManifest, what: str) -> IndexCorruptError:
    return IndexCorruptError(f"{path} is corrupt ({what}); rebuild the index with "
                             f"`{rebuild_command(path.parent.name, manifest)}`")


def _read_faiss(path: Path, manifest: IndexManifest) -> faiss.Index:
    """``index.faiss``, checked against the manifest (FAISS raises a bare C++ error on a truncated file)."""
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as e:
        raise _corrupt(path, manifest, f"FAISS cannot read it: {str(e).strip().splitlines()[-1][:160]}") from None
    if index.d != manifest.dim or index.ntotal < manifest.count:
        raise _corrupt(path, manifest, f"it holds {index.ntotal} vectors of width {index.d}; the manifest says "
                       f"{manifest.count} of width {manifest.dim}")
    return index


def _open_store(path: Path, manifest: IndexManifest) -> MetadataStore:
    """``meta.sqlite`` read-only, checked: SQLite only notices a file that is not a database at the first query."""
    try:
        store = MetadataStore(path)
        live = store.count()
    except sqlite3.DatabaseError as e:
        raise _corrupt(path, manifest, f"SQLite: {e}") from None
    if live != manifest.count:
        store.close()
        raise _corrupt(path, manifest, f"it has {live} items; the manifest says {manifest.count}")
    return store
