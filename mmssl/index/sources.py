"""Ready-made item streams for :func:`~mmssl.index.build_index`: image folders, image corpora, Python
projects and the code corpus. Each returns ``(items, source)``; pass both to ``build_index``.

    items, source = image_folder_items("~/photos")
    build_index("photos", model, items, source=source)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from mmssl.data.code_text import (
    DEFAULT_INDEX_TEXT,
    check_index_text,
    index_text,
    module_of,
)
from mmssl.index.items import IndexItem, file_sha1

__all__ = ["CountedItems", "code_corpus_items", "code_folder_items", "code_record_item", "image_corpus_items",
           "image_folder_items", "image_record_item", "module_of"]


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


def code_record_item(record: dict, text: str = DEFAULT_INDEX_TEXT) -> IndexItem:
    """A CodeSearchNet-style record as an index item.

    ``text`` picks what is embedded (:func:`mmssl.data.code_text.index_text`): ``"full"`` (name,
    class, signature, docstring and body: what a search product needs) or ``"code"`` (the docstring
    cut, CodeSearchNet's form). ``sha1`` is the hash of that content, so ``Index.refresh`` re-embeds
    a function exactly when what it embeds changed.
    """
    path = record["path"]
    content = index_text(record, text)
    sha1 = hashlib.sha1(content.encode("utf-8", errors="surrogatepass")).hexdigest()
    return IndexItem(path=path, content=content, sha1=sha1, metadata={
        "func_name": record.get("func_name", ""), "signature": record.get("signature", ""),
        "line": record.get("line"), "module": module_of(path), "repo": record.get("repo", ""),
        "docstring": record.get("docstring", ""), "original_string": record.get("original_string", ""),
        "source": record.get("repo", ""), "url": record.get("url", ""),
    })


def image_folder_items(folder: str | Path, report=None) -> tuple[Iterator[IndexItem], dict]:
    """A user's image folder (:func:`mmssl.data.folder.scan_image_folder`); ``Index.refresh`` re-reads it.
    Files skipped by the scan (corrupt, too large, ...) are counted in ``report`` (a ``CorpusReport``)."""
    from mmssl.data.folder import scan_image_folder

    folder = Path(folder).expanduser().resolve()
    records = scan_image_folder(folder, report)
    return CountedItems(records, image_record_item), {"type": "image-folder", "folder": str(folder)}


def image_corpus_items(name: str, split: str = "test", root: Path | None = None) -> tuple[Iterator[IndexItem], dict]:
    """A built image corpus split (``data/corpora/NAME/SPLIT.jsonl``)."""
    from mmssl.data.corpus import load_corpus

    dataset = load_corpus(name, split, root)
    return CountedItems(dataset, image_record_item), {"type": "image-corpus", "corpus": name, "split": split}


def code_folder_items(folder: str | Path, repo: str | None = None, text: str = DEFAULT_INDEX_TEXT,
                      require_docstring: bool = False) -> tuple[Iterator[IndexItem], dict]:
    """A user's Python project (:func:`mmssl.data.code.extract_folder`), undocumented functions included
    unless ``require_docstring`` (CodeSearchNet's rule); ``text`` as in :func:`code_record_item`.
    ``Index.refresh`` re-reads the folder with the same options (kept in the returned source)."""
    from mmssl.data.code import extract_folder
    from mmssl.data.report import CorpusReport

    folder = Path(folder).expanduser().resolve()
    check_index_text(text)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder; pass the root of your Python project")
    items = CountedItems(lambda: extract_folder(folder, CorpusReport("code"), repo=repo,
                                                require_docstring=require_docstring),
                         lambda record: code_record_item(record, text))
    return items, {"type": "code-folder", "folder": str(folder), "repo": repo, "index_text": text,
                   "require_docstring": require_docstring}


def code_corpus_items(split: str = "test", name: str = "code", root: Path | None = None,
                      text: str = DEFAULT_INDEX_TEXT) -> tuple[Iterator[IndexItem], dict]:
    """The built code corpus split; ``text`` as in :func:`code_record_item`."""
    from mmssl.data.corpus import load_corpus

    check_index_text(text)
    dataset = load_corpus(name, split, root)
    return CountedItems(dataset, lambda record: code_record_item(record, text)), {
        "type": "code-corpus", "corpus": name, "split": split, "index_text": text}
