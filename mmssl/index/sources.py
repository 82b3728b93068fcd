"""Ready-made item streams for :func:`~mmssl.index.build_index`: image folders, image corpora, Python
projects and the code corpus. Each returns ``(items, source)``; pass both to ``build_index``.

    items, source = image_folder_items("~/photos")
    build_index("photos", model, items, source=source)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

from mmssl.index.items import IndexItem, file_sha1


class CountedItems:
    """Index items made from records on demand, whose ``len()`` is known before the first one is
    made, so a build's progress bar has a total. ``records`` is an iterable (a list, a dataset) or a
    function returning a fresh iterator (then ``len()`` counts one pass of it, once)."""

    def __init__(self, records: Iterable[dict] | Callable[[], Iterator[dict]], make: Callable[[dict], IndexItem]):
        self._records, self._make, self._count = records, make, None

    def _fresh(self) -> Iterable[dict]:
        return self._records() if callable(self._records) else self._records

    def __len__(self) -> int:
        if self._count is None:
            records = self._fresh()
            self._count = len(records) if hasattr(records, "__len__") else sum(1 for _ in records)
        return self._count

    def __iter__(self) -> Iterator[IndexItem]:
        return (self._make(record) for record in self._fresh())


def module_of(path: str) -> str:
    """``"urllib/parse.py"`` -> ``"urllib.parse"``; ``"json/__init__.py"`` -> ``"json"``."""
    parts = list(PurePosixPath(path.replace(os.sep, "/")).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def image_record_item(record: dict, sha1: str | None = None) -> IndexItem:
    """An image record (folder scan or image corpus) as an index item; hashes the file if needed."""
    path = str(record["image"])
    mtime = record.get("mtime")
    if mtime is None:
        mtime = os.stat(path).st_mtime
    return IndexItem(path=path, content=path, mtime=mtime, sha1=sha1 or file_sha1(path), metadata={
        "caption": record.get("text", ""), "captions": record.get("captions") or [record.get("text", "")],
        "folder": record.get("group", ""), "source": record.get("source", ""), "item_id": record.get("id", ""),
    })


def code_record_item(record: dict) -> IndexItem:
    """A CodeSearchNet-style record as an index item (its ``code``, docstring cut, is embedded)."""
    path = record["path"]
    return IndexItem(path=path, content=record["code"], metadata={
        "func_name": record.get("func_name", ""), "signature": record.get("signature", ""),
        "line": record.get("line"), "module": module_of(path), "repo": record.get("repo", ""),
        "docstring": record.get("docstring", ""), "original_string": record.get("original_string", ""),
        "source": record.get("repo", ""), "url": record.get("url", ""),
    })


def image_folder_items(folder: str | Path) -> tuple[Iterator[IndexItem], dict]:
    """A user's image folder (:func:`mmssl.data.folder.scan_image_folder`); ``Index.refresh`` re-reads it."""
    from mmssl.data.folder import scan_image_folder

    folder = Path(folder).expanduser().resolve()
    records = scan_image_folder(folder)
    return CountedItems(records, image_record_item), {"type": "image-folder", "folder": str(folder)}


def image_corpus_items(name: str, split: str = "test", root: Path | None = None) -> tuple[Iterator[IndexItem], dict]:
    """A built image corpus split (``data/corpora/NAME/SPLIT.jsonl``)."""
    from mmssl.data.corpus import load_corpus

    dataset = load_corpus(name, split, root)
    return CountedItems(dataset, image_record_item), {"type": "image-corpus", "corpus": name, "split": split}


def code_folder_items(folder: str | Path, repo: str | None = None) -> tuple[Iterator[IndexItem], dict]:
    """A user's Python project (:func:`mmssl.data.code.extract_folder`, CodeSearchNet rules)."""
    from mmssl.data.code import extract_folder
    from mmssl.data.report import CorpusReport

    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder; pass the root of your Python project")
    items = CountedItems(lambda: extract_folder(folder, CorpusReport("code"), repo=repo), code_record_item)
    return items, {"type": "code-folder", "folder": str(folder)}


def code_corpus_items(split: str = "test", name: str = "code",
                      root: Path | None = None) -> tuple[Iterator[IndexItem], dict]:
    """The built code corpus split."""
    from mmssl.data.corpus import load_corpus

    dataset = load_corpus(name, split, root)
    return CountedItems(dataset, code_record_item), {"type": "code-corpus", "corpus": name, "split": split}
