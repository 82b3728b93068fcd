"""The items of a built index, embedded again with another model into a new index (a retrained model
next to the old one: same items, same metadata and source, new vectors; the old index is not touched).

    new = reindex("indexes/my-photos", load_model("models/clip-default-my-photos-v2"), "my-photos-v2")

Works for every source (folder, corpus, staged build) because it reads the items from the index
itself, not from where they came from: an image's file, a function's text as the index embedded it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmssl.data.code_text import DEFAULT_INDEX_TEXT, index_text
from mmssl.index.build import build_index
from mmssl.index.index import Index, load_index
from mmssl.index.items import IndexItem


def stored_items(index: Index) -> list[IndexItem]:
    """Every live item of ``index`` as an :class:`IndexItem` that embeds as it did.

    Raises:
        ValueError: a code index of docstring-cut functions (``--index-text code``): the index keeps the
            whole source only, so it must be built again from its source.
    """
    text = index.manifest.source.get("index_text") or DEFAULT_INDEX_TEXT
    if index.manifest.kind == "code" and text != DEFAULT_INDEX_TEXT:
        raise ValueError(f"{index.folder} embeds docstring-cut functions, which it does not store; build the new "
                         f"index from its source (`mmssl index build NAME --model NEW --index-text {text} ...`)")
    items = []
    for row in index.store.live_rows():
        if index.manifest.kind == "code":
            content = index_text({**row.metadata, "path": row.path, "code": row.metadata.get("original_string", "")},
                                 text)
        elif index.manifest.kind == "text":
            content = str(row.metadata.get("caption", ""))
        else:
            content = row.path
        items.append(IndexItem(path=row.path, content=content, mtime=row.mtime, sha1=row.sha1,
                               metadata=row.metadata))
    return items


def reindex(source: str | Path, model, target: str | Path,
            on_progress: Callable[[int, int | None], None] | None = None) -> Index:
    """Embed the items of the index ``source`` with ``model`` into the new index ``target``.

    Raises:
        IndexExistsError: ``target`` exists (a retrained model gets a new index, never an old one).
    """
    old = load_index(source)
    try:
        items, manifest = stored_items(old), old.manifest
    finally:
        old.close()
    return build_index(target, model, items, kind=manifest.kind, factory=manifest.factory, source=dict(manifest.source),
                       progress=False, replace=False, on_progress=on_progress)
