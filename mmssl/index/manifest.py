"""``manifest.json``: what an index was built from and how to search it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from mmssl.index.errors import REBUILD_HINT, IndexNotFoundError

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


@dataclass
class IndexManifest:
    """Attributes:
        model_fingerprint: ``RetrievalModel.fingerprint`` of the model that embedded the items.
        model_path: where that model was loaded from (for the rebuild hint).
        model_kind: ``"image-text"`` or ``"code"``.
        kind: item kind: ``"image"``, ``"code"`` or ``"text"``.
        dim: embedding width D.
        count: live items (tombstones excluded).
        next_id: the next FAISS id to hand out; ids are never reused.
        factory: FAISS factory string of the inner index (always wrapped in ``IDMap2``).
        search_params: FAISS parameters applied on load (``efSearch``, ``nprobe``).
        corpus_hash: SHA-1 over (path, sha1 or content) of the built items, in order.
        source: how to find the items again, e.g. ``{"type": "image-folder", "folder": "/abs/path"}``.
        encoding: how the model ran when it embedded the items (``RetrievalModel.encoding``:
            ``"fp32"`` or ``"fast"``); queries must run the same way. Indexes written before this
            field existed were embedded in fp32.
    """

    model_fingerprint: str
    model_path: str
    model_kind: str
    kind: str
    dim: int
    count: int
    next_id: int
    factory: str
    search_params: dict = field(default_factory=dict)
    metric: str = "ip"
    corpus_hash: str = ""
    source: dict = field(default_factory=dict)
    built_at: str = ""
    updated_at: str = ""
    mmssl_version: str = ""
    encoding: str = "fp32"
    format_version: int = FORMAT_VERSION


def write_manifest(manifest: IndexManifest, folder: Path) -> None:
    """Write ``<folder>/manifest.json`` atomically (temp + rename)."""
    path = Path(folder) / MANIFEST_FILE
    tmp = path.with_name(f".{MANIFEST_FILE}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(folder: Path) -> IndexManifest:
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise IndexNotFoundError(f"{folder} is not an index (no {MANIFEST_FILE}); build one with "
                                 f"`{REBUILD_HINT} ...`")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format_version") != FORMAT_VERSION:
        raise IndexNotFoundError(f"{path} has index format {data.get('format_version')!r}, this mmssl reads "
                                 f"{FORMAT_VERSION}; rebuild it with `{REBUILD_HINT} ...`")
    known = {f.name for f in fields(IndexManifest)}
    return IndexManifest(**{k: v for k, v in data.items() if k in known})
