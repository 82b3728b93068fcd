"""Ready-made item streams for :func:`~mmssl.index.build_index`: image folders, image corpora, Python
projects and the code corpus. Each returns ``(items, source)``; pass both to ``build_index``.

    items, source = image_folder_items("~/photos")
    build_index("photos", model, items, source=source)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from mmssl.index.items import IndexItem, file_sha1


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


def image_folder_items(folder: str | Path, report=None) -> tuple[Iterator[IndexItem], dict]:
    """A user's image folder (:func:`mmssl.data.folder.scan_image_folder`); ``Index.refresh`` re-reads it.
    Files skipped by the scan (corrupt, too large, ...) are counted in ``report`` (a ``CorpusReport``)."""
    from mmssl.data.folder import scan_image_folder

    folder = Path(folder).expanduser().resolve()
    records = scan_image_folder(folder, report)
    return (image_record_item(r) for r in records), {"type": "image-folder", "folder": str(folder)}


def image_corpus_items(name: str, split: str = "test", root: Path | None = None) -> tuple[Iterator[IndexItem], dict]:
    """A built image corpus split (``data/corpora/NAME/SPLIT.jsonl``)."""
    from mmssl.data.corpus import load_corpus

    dataset = load_corpus(name, split, root)
    return (image_record_item(r) for r in dataset), {"type": "image-corpus", "corpus": name, "split": split}


def code_folder_items(folder: str | Path, repo: str | None = None) -> tuple[Iterator[IndexItem], dict]:
    """A user's Python project (:func:`mmssl.data.code.extract_folder`, CodeSearchNet rules)."""
    from mmssl.data.code import extract_folder
    from mmssl.data.report import CorpusReport

    folder = Path(folder).expanduser().resolve()
    records = extract_folder(folder, CorpusReport("code"), repo=repo)
    return (code_record_item(r) for r in records), {"type": "code-folder", "folder": str(folder)}


def code_corpus_items(split: str = "test", name: str = "code",
                      root: Path | None = None) -> tuple[Iterator[IndexItem], dict]:
    """The built code corpus split."""
    from mmssl.data.corpus import load_corpus

    dataset = load_corpus(name, split, root)
    return (code_record_item(r) for r in dataset), {"type": "code-corpus", "corpus": name, "split": split}
