"""Where mmssl keeps fetched sources and built corpora.

Everything lives under one data root: ``$MMSSL_DATA_DIR`` if set, else ``<project>/data`` (the
folder beside the ``mmssl`` package, git-ignored). Layout::

    data/raw/deb/<package>/...     files extracted from Debian packages (dpkg-deb -x)
    data/raw/npm/<package>/...     unpacked npm tarballs
    data/raw/wheels/*.whl          pinned wheels read as zip files, never installed
    data/corpora/<name>/           built corpora: JSONL splits, cached rendered images, report.json
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """The data root (created on demand by the writers, not here)."""
    env = os.environ.get("MMSSL_DATA_DIR")
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / "data"


def raw_dir(kind: str) -> Path:
    """``data/raw/<kind>`` for kind in {"deb", "npm", "wheels"}."""
    return data_root() / "raw" / kind


def corpus_dir(name: str) -> Path:
    """``data/corpora/<name>``: where a built corpus lives."""
    return data_root() / "corpora" / name
