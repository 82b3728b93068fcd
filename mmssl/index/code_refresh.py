"""``Index.refresh`` for a code-folder index: re-extract the project and re-embed only what changed.

Functions are matched by (file path, qualified name) and compared by the sha1 of what is embedded
(:func:`~mmssl.index.sources.code_record_item` stores it): the same hash means the same vector, so
the function is kept as it is, and only its metadata is rewritten if that moved (a function pushed
down by an edit above it gets its new ``line`` without being re-embedded). A changed hash
re-embeds it; a new function is added; a vanished one is removed. The whole change is one atomic
write of the index folder.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from mmssl.index.items import IndexItem, RefreshReport


def _label(item_path: str, func_name: str) -> str:
    return f"{item_path}:{func_name}"


def _items_again(source: dict, folder: str | Path | None) -> list[IndexItem]:
    """The project's items, extracted with the options the index was built with."""
    from mmssl.index.sources import code_folder_items

    folder = folder or source.get("folder")
    if folder is None:
        raise ValueError("this code index was not built from a project folder; pass refresh(folder=...) or rebuild "
                         "it with `python -m mmssl index build NAME --project FOLDER`")
    # indexes built before the index-text option embedded the docstring-cut code of documented functions
    items, _ = code_folder_items(folder, repo=source.get("repo"), text=source.get("index_text", "code"),
                                 require_docstring=source.get("require_docstring", True))
    return list(items)


def refresh_code_index(index, folder: str | Path | None = None, batch_size: int = 256):
    """Bring a code-folder ``index`` up to date with its project; returns a ``RefreshReport``."""

    items = _items_again(index.manifest.source, folder)
    known: dict[tuple[str, str], list] = defaultdict(list)
    for row in index.store.live_rows():
        known[(row.path, row.metadata.get("func_name", ""))].append(row)
    report = RefreshReport()
    metadata_updates, changed = [], []
    for item in items:
        rows = known.get((item.path, item.metadata.get("func_name", "")), [])
        same = next((row for row in rows if row.sha1 == item.sha1), None)
        if same is None:
            changed.append(item)
            continue
        rows.remove(same)
        report.unchanged += 1
        if same.metadata != item.metadata:
            metadata_updates.append((same.id, item.metadata))
    stale_ids = []
    for item in changed:
        rows = known.get((item.path, item.metadata.get("func_name", "")), [])
        label = _label(item.path, item.metadata.get("func_name", ""))
        if rows:
            stale_ids.append(rows.pop(0).id)
            report.reembedded.append(label)
        else:
            report.added.append(label)
    for (path, func_name), rows in known.items():
        for row in rows:
            stale_ids.append(row.id)
            report.removed.append(_label(path, func_name))
    index._replace_items(stale_ids, changed, batch_size,
                         [lambda store, i=i, m=m: store.set_metadata(i, m) for i, m in metadata_updates])
    return report
