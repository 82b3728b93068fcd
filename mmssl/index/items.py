"""What an index holds, one row per item: the thing to embed plus the metadata shown with a hit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

SHA1_CHUNK = 1 << 20

# item kind -> the RetrievalModel.kind that can embed it
MODEL_KIND_FOR_ITEM = {"image": "image-text", "text": "image-text", "code": "code"}
ITEM_KINDS = tuple(MODEL_KIND_FOR_ITEM)
# a source's ``type`` (mmssl.index.sources) -> the kind of the items it yields
ITEM_KIND_FOR_SOURCE = {"image-folder": "image", "image-corpus": "image", "code-folder": "code",
                        "code-corpus": "code"}


@dataclass
class IndexItem:
    """One item to index.

    Attributes:
        path: where the item lives (an image file; a source file for code, shared by its functions).
            ``Index.delete(paths)`` removes every item with that path.
        content: what the model embeds: an image file path (kind "image"), function code (kind
            "code") or a caption (kind "text").
        metadata: JSON-serialisable fields shown with a hit and usable in filters (``caption``,
            ``folder``, ``func_name``, ``signature``, ``line``, ``module``, ``source``, ...).
        mtime: modification time of ``path`` for image files (None for code records).
        sha1: content hash of ``path`` for image files, used by ``Index.refresh``.
    """

    path: str
    content: str
    metadata: dict = field(default_factory=dict)
    mtime: float | None = None
    sha1: str | None = None


def file_sha1(path: str | Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(SHA1_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class RefreshReport:
    """What a refresh did: paths added, re-embedded and removed, and how many items were unchanged."""

    added: list[str] = field(default_factory=list)
    reembedded: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
