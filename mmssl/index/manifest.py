"""``manifest.json``: what an index was built from and how to search it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from mmssl.index.errors import REBUILD_HINT, IndexCorruptError, IndexNotFoundError
from mmssl.index.layout import MANIFEST_FILE, index_folder
from mmssl.io import write_json

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
    write_json(Path(folder) / MANIFEST_FILE, asdict(manifest), indent=2, sort_keys=True)


def rebuild_command(name: str, manifest: IndexManifest | None = None) -> str:
    """The shell command that builds index ``name`` again from its recorded source and model
    (placeholders where the manifest is missing or unreadable)."""
    source = manifest.source if manifest is not None else {}
    model = (manifest.model_path if manifest is not None and manifest.model_path else "MODEL")
    kind = source.get("type", "")
    if kind in ("image-folder", "code-folder") and source.get("folder"):
        flag = "--images" if kind == "image-folder" else "--project"
        return f"{REBUILD_HINT} {name} --model {model} {flag} {source['folder']}"
    if kind in ("image-corpus", "code-corpus") and source.get("corpus"):
        if "+" in source["corpus"] or source.get("split") == "all":  # the demo's default indexes
            return "python -m mmssl serve --build-missing"
        return f"{REBUILD_HINT} {name} --model {model} --corpus {source['corpus']} --split {source.get('split', 'test')}"
    return f"{REBUILD_HINT} {name} --model {model} (--images DIR | --project DIR | --corpus NAME)"


def read_manifest(name_or_folder: str | Path) -> IndexManifest:
    """The manifest of index ``name_or_folder`` (a name under the indexes root, or a folder), without
    loading the index.

    Raises:
        IndexNotFoundError: no ``manifest.json`` (not an index), or a format this mmssl does not read.
        IndexCorruptError: ``manifest.json`` is not a valid manifest (the message names it and the rebuild).
    """
    folder = index_folder(name_or_folder)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise IndexNotFoundError(f"{folder} is not an index (no {MANIFEST_FILE}); build one with "
                                 f"`{REBUILD_HINT} ...`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
    except (UnicodeDecodeError, ValueError) as e:
        raise IndexCorruptError(f"{path} is broken (not a valid manifest: {e}); rebuild the index with "
                                f"`{rebuild_command(folder.name)}`") from None
    if data.get("format_version") != FORMAT_VERSION:
        raise IndexNotFoundError(f"{path} has index format {data.get('format_version')!r}, this mmssl reads "
                                 f"{FORMAT_VERSION}; rebuild it with `{REBUILD_HINT} ...`")
    known = {f.name for f in fields(IndexManifest)}
    try:
        return IndexManifest(**{k: v for k, v in data.items() if k in known})
    except TypeError as e:  # a required field missing
        raise IndexCorruptError(f"{path} is broken ({e}); rebuild the index with "
                                f"`{rebuild_command(folder.name)}`") from None
