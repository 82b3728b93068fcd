"""Per-item metadata in SQLite (``meta.sqlite``): one row per FAISS id, never pickle.

Schema::

    items(id INTEGER PRIMARY KEY,  -- the FAISS id
          path TEXT NOT NULL,      -- indexed: delete/refresh look items up by path
          meta TEXT NOT NULL,      -- JSON: caption, folder, source, line, func_name, signature, module, ...
          mtime REAL, sha1 TEXT,   -- image files: what refresh compares
          deleted INTEGER NOT NULL DEFAULT 0)  -- tombstone (HNSW only; other structures delete rows)

The JSON column keeps the schema fixed while sources add fields; SQLite's ``json_extract`` still
reaches them from SQL.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmssl.index.filters import Filter, matches, sql_condition
from mmssl.index.items import IndexItem

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    mtime REAL,
    sha1 TEXT,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_path ON items(path);
"""
SQL_VARIABLES = 900  # below SQLite's default 999 bound parameters per statement


@dataclass
class Row:
    id: int
    path: str
    metadata: dict
    mtime: float | None
    sha1: str | None
    deleted: bool


def _chunks(values: Sequence, size: int = SQL_VARIABLES):
    for start in range(0, len(values), size):
        yield values[start:start + size]


class MetadataStore:
    """A SQLite file of item rows. Open read-only for searching, writable inside a build/write folder."""

    def __init__(self, path: str | Path, *, writable: bool = False):
        self.path = Path(path)
        if writable:
            self.connection = sqlite3.connect(self.path, check_same_thread=False)
            self.connection.executescript(SCHEMA)
        else:
            if not self.path.is_file():
                raise FileNotFoundError(f"no metadata file {self.path}")
            self.connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)

    def close(self) -> None:
        self.connection.close()

    def commit(self) -> None:
        self.connection.commit()

    def copy_to(self, path: str | Path) -> "MetadataStore":
        """A writable copy at ``path`` (SQLite's backup API: consistent even while others read)."""
        target = MetadataStore(path, writable=True)
        self.connection.backup(target.connection)
        return target

    # ------------------------------------------------------------------ writes

    def insert(self, ids: Iterable[int], items: Iterable[IndexItem]) -> None:
        self.connection.executemany(
            "INSERT INTO items (id, path, meta, mtime, sha1) VALUES (?, ?, ?, ?, ?)",
            [(int(i), item.path, json.dumps(item.metadata, ensure_ascii=False), item.mtime, item.sha1)
             for i, item in zip(ids, items)])

    def remove(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(list(ids)):
            self.connection.execute(f"DELETE FROM items WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def tombstone(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(list(ids)):
            self.connection.execute(f"UPDATE items SET deleted = 1 WHERE id IN ({','.join('?' * len(chunk))})",
                                    chunk)

    def set_mtime(self, item_id: int, mtime: float) -> None:
        self.connection.execute("UPDATE items SET mtime = ? WHERE id = ?", (mtime, item_id))

    def set_metadata(self, item_id: int, metadata: dict) -> None:
        self.connection.execute("UPDATE items SET meta = ? WHERE id = ?",
                                (json.dumps(metadata, ensure_ascii=False), item_id))

    # ------------------------------------------------------------------ reads

    def rows(self, ids: Sequence[int]) -> dict[int, Row]:
        """{id: Row} for the ids that have a row (tombstoned ones included, flagged)."""
        found = {}
        ids = [int(i) for i in ids]
        for chunk in _chunks(ids):
            cursor = self.connection.execute(
                f"SELECT id, path, meta, mtime, sha1, deleted FROM items WHERE id IN ({','.join('?' * len(chunk))})",
                chunk)
            for row in cursor:
                found[row[0]] = Row(row[0], row[1], json.loads(row[2]), row[3], row[4], bool(row[5]))
        return found

    def live_rows(self, path_prefix: str | None = None) -> list[Row]:
        """Every row not tombstoned, optionally only paths starting with ``path_prefix``."""
        query = "SELECT id, path, meta, mtime, sha1, deleted FROM items WHERE deleted = 0"
        params: tuple = ()
        if path_prefix is not None:
            query += " AND substr(path, 1, ?) = ?"
            params = (len(path_prefix), path_prefix)
        return [Row(r[0], r[1], json.loads(r[2]), r[3], r[4], bool(r[5]))
                for r in self.connection.execute(query + " ORDER BY id", params)]

    def live_ids_for_paths(self, paths: Sequence[str]) -> list[int]:
        ids = []
        for chunk in _chunks(list(paths)):
            cursor = self.connection.execute(
                f"SELECT id FROM items WHERE deleted = 0 AND path IN ({','.join('?' * len(chunk))})", chunk)
            ids.extend(r[0] for r in cursor)
        return sorted(ids)

    def matching_ids(self, filter: Filter) -> np.ndarray:
        """Sorted live ids (M,) int64 whose metadata (``path`` included) passes ``filter``: SQLite
        evaluates dict filters (:func:`~mmssl.index.filters.sql_condition`), Python the rest."""
        condition = sql_condition(filter)
        if condition is not None:
            sql, params = condition
            cursor = self.connection.execute(f"SELECT id FROM items WHERE deleted = 0 AND {sql} ORDER BY id", params)
            ids = [r[0] for r in cursor]
        else:
            ids = [row.id for row in self.live_rows() if matches(filter, {"path": row.path, **row.metadata})]
        return np.asarray(ids, dtype=np.int64)

    def distinct_values(self, field: str) -> list:
        """The distinct non-empty values of metadata ``field`` over live rows, sorted."""
        rows = self.connection.execute(
            "SELECT DISTINCT json_extract(meta, '$.' || ?) FROM items WHERE deleted = 0", (field,))
        return sorted({r[0] for r in rows if r[0]})

    def distinct_paths(self) -> list[str]:
        """Every live row's ``path``, once."""
        return [r[0] for r in self.connection.execute("SELECT DISTINCT path FROM items WHERE deleted = 0")]

    def tombstoned_ids(self) -> list[int]:
        return [r[0] for r in self.connection.execute("SELECT id FROM items WHERE deleted = 1 ORDER BY id")]

    def count(self, *, deleted: bool = False) -> int:
        return self.connection.execute("SELECT COUNT(*) FROM items WHERE deleted = ?", (int(deleted),)).fetchone()[0]
