"""Errors a user can cause with an index; each message says how to fix it."""

from __future__ import annotations

REBUILD_HINT = "python -m mmssl index build"


class IndexNotFoundError(FileNotFoundError):
    """No built index at the given folder (or the folder is not an index)."""


class IndexModelMismatchError(ValueError):
    """The model given to :func:`~mmssl.index.load_index` is not the one the index was built with."""


class IndexNeedsModelError(ValueError):
    """A write (add, refresh) needs a model to embed new items, but the index was loaded without one."""


class EmptyIndexError(ValueError):
    """A build got no items at all."""


class QueryShapeError(ValueError):
    """Query vectors have the wrong shape or width for this index."""


class IndexCorruptError(ValueError):
    """An index folder is there but one of its files cannot be read (truncated, not valid JSON/SQLite/FAISS);
    the message names the file and the command that rebuilds the index."""


class IndexExistsError(ValueError):
    """A build would replace an existing index, and the caller did not ask to replace it."""


class IndexBusyError(RuntimeError):
    """Another build or write of the same index holds its writer lock."""
