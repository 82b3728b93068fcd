"""Where an index lives on disk and what its folder holds: the one place that knows the layout.

    <indexes root>/            PROJECT_ROOT/indexes, or $MMSSL_INDEX_DIR
      NAME/                    the index: index.faiss, meta.sqlite, manifest.json
      .NAME.build/             a build's resumable embedding chunks (mmssl.index.chunks)
      .NAME.tmp-<pid>/         a write being assembled (mmssl.io.temp_folder)
      .NAME.lock               the writer lock (mmssl.index.lock.writer_lock)

A name is a folder under the root; anything with a path separator is a folder as given.
"""

from __future__ import annotations

import os
from pathlib import Path

FAISS_FILE = "index.faiss"
META_FILE = "meta.sqlite"
MANIFEST_FILE = "manifest.json"
INDEX_DIR_ENV = "MMSSL_INDEX_DIR"


def indexes_root() -> Path:
    env = os.environ.get(INDEX_DIR_ENV)
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


def work_folder(folder: Path) -> Path:
    """Where a build of ``folder`` keeps its embedding chunks until it succeeds (``.NAME.build``)."""
    return folder.parent / f".{folder.name}.build"


def lock_path(folder: Path) -> Path:
    """The writer-lock file of the index at ``folder``: ``.NAME.lock`` beside it."""
    return folder.parent / f".{folder.name}.lock"
