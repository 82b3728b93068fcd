"""The index API its callers need (issue 15 item 3): a manifest without loading the index, the distinct
values of a metadata field, the item paths and the indexed folders; the layout in one module."""

from __future__ import annotations

import faiss
import pytest

from mmssl.index import build_index, image_folder_items, index_folder, load_index, read_manifest
from mmssl.index.layout import FAISS_FILE, lock_path, work_folder
from tests.index.stub_model import StubModel, code_items
from tests.index.test_index_writes import make_images


def test_read_manifest_by_name_does_not_load_the_index(tmp_path, monkeypatch):
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    build_index("funcs", StubModel(kind="code"), code_items(10), progress=False)
    monkeypatch.setattr(faiss, "read_index", lambda *a: pytest.fail("read_manifest loaded the FAISS file"))
    manifest = read_manifest("funcs")
    assert (manifest.kind, manifest.count, manifest.dim) == ("code", 10, 16)
    assert read_manifest(tmp_path / "indexes" / "funcs") == manifest


def test_distinct_values_and_indexed_folders(tmp_path):
    paths = make_images(tmp_path / "photos")
    items, source = image_folder_items(tmp_path / "photos")
    index = build_index(tmp_path / "indexes" / "photos", StubModel(), items, source=source, progress=False)
    assert index.distinct_values("folder") == ["cats"]  # "" (the top folder) is not a value
    assert index.distinct_values("caption") == ["black", "blue car", "red truck", "tabby"]
    assert sorted(index.item_paths()) == sorted(str(p) for p in paths.values())
    assert index.indexed_folders() == sorted({str(tmp_path / "photos"), str(tmp_path / "photos" / "cats")})
    index.delete([paths["cats/black"]])
    assert load_index(tmp_path / "indexes" / "photos").distinct_values("caption") == ["blue car", "red truck", "tabby"]


def test_layout_names_every_file_beside_an_index(tmp_path, monkeypatch):
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path))
    folder = index_folder("emoji")
    assert folder == tmp_path / "emoji" and work_folder(folder) == tmp_path / ".emoji.build"
    assert lock_path(folder) == tmp_path / ".emoji.lock" and FAISS_FILE == "index.faiss"
    assert index_folder("indexes/emoji").is_absolute()
    with pytest.raises(ValueError, match="bad index name"):
        index_folder("..")
