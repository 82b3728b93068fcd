"""Atomic builds, model mismatch, image-folder refresh, and the on-disk format (SQLite, no pickle)."""

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmssl.index
from mmssl.index import (IndexModelMismatchError, IndexNeedsModelError, build_index, image_folder_items,
                         load_index)
from tests.index.stub_model import StubModel


def make_images(folder: Path) -> dict[str, Path]:
    colours = {"red_truck": (220, 20, 20), "blue_car": (20, 20, 220), "cats/tabby": (200, 150, 90),
               "cats/black": (10, 10, 10)}
    paths = {}
    for name, colour in colours.items():
        path = folder / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (24, 24), colour).save(path)
        paths[name] = path.resolve()
    return paths


def build_photos(tmp_path, model, **kwargs):
    items, source = image_folder_items(tmp_path / "photos")
    return build_index(tmp_path / "indexes" / "photos", model, items, source=source, batch_size=2,
                       progress=False, **kwargs)


def test_image_folder_build_and_search(tmp_path):
    paths = make_images(tmp_path / "photos")
    model = StubModel()
    index = build_photos(tmp_path, model)
    assert index.manifest.kind == "image" and index.manifest.count == 4
    query = model.encode_image([paths["cats/tabby"]])  # (1, D)
    top = index.search(query, k=2)[0]
    assert top[0].metadata["path"] == str(paths["cats/tabby"]) and top[0].score == pytest.approx(1.0, abs=1e-5)
    assert top[0].metadata["caption"] == "tabby" and top[0].metadata["folder"] == "cats"
    assert all(h.metadata["folder"] == "cats" for h in index.search(query, k=4, filter={"folder": "cats"})[0])


def test_crash_mid_build_keeps_old_index(tmp_path):
    make_images(tmp_path / "photos")
    build_photos(tmp_path, StubModel())
    before = (tmp_path / "indexes" / "photos" / "manifest.json").read_text()
    with pytest.raises(KeyboardInterrupt, match="simulated crash"):
        build_photos(tmp_path, StubModel(fail_after_batches=1))
    assert (tmp_path / "indexes" / "photos" / "manifest.json").read_text() == before
    # the staging folder is cleaned up, and so is the work folder: it holds no complete chunk to resume
    # from (one chunk of 4096 items was cut short); the writer lock's file stays (removing a flock file
    # races with the next writer)
    assert sorted(p.name for p in (tmp_path / "indexes").iterdir()) == [".photos.lock", "photos"]
    index = load_index(tmp_path / "indexes" / "photos", StubModel())
    assert len(index.search(np.ones(16), k=10)[0]) == 4


def test_interrupted_swap_is_recovered(tmp_path):
    make_images(tmp_path / "photos")
    build_photos(tmp_path, StubModel())
    folder = tmp_path / "indexes" / "photos"
    os.replace(folder, folder.parent / ".photos.old-12345")  # crash between the two renames
    assert load_index(folder).manifest.count == 4


def test_model_mismatch(tmp_path):
    make_images(tmp_path / "photos")
    build_photos(tmp_path, StubModel())
    folder = tmp_path / "indexes" / "photos"
    with pytest.raises(IndexModelMismatchError, match="python -m mmssl index build"):
        load_index(folder, StubModel(fingerprint="sha256:other"))
    with pytest.raises(IndexModelMismatchError, match="dim 16"):
        load_index(folder, StubModel(dim=8))
    with pytest.raises(IndexModelMismatchError, match="cannot embed image"):
        build_photos(tmp_path, StubModel(kind="code"), kind="image")
    with pytest.raises(IndexNeedsModelError, match="load_index"):
        load_index(folder).add([])


def test_refresh_reembeds_only_changed(tmp_path):
    paths = make_images(tmp_path / "photos")
    model = StubModel()
    build_photos(tmp_path, model)
    index = load_index(tmp_path / "indexes" / "photos", model)
    ids_before = {h.metadata["path"]: h.id for h in index.search(np.ones(16), k=10)[0]}
    model.encoded.clear()

    Image.new("RGB", (24, 24), (0, 200, 0)).save(paths["red_truck"])  # modified content
    os.utime(paths["red_truck"], (1e9, 1e9))
    os.utime(paths["blue_car"], (1e9, 1e9))  # touched, same bytes: not re-embedded
    paths["cats/black"].unlink()  # deleted
    Image.new("RGB", (24, 24), (255, 255, 0)).save(tmp_path / "photos" / "yellow_sun.png")  # new

    report = index.refresh()
    assert report.reembedded == [str(paths["red_truck"])]
    assert report.removed == [str(paths["cats/black"])]
    assert report.added == [str((tmp_path / "photos" / "yellow_sun.png").resolve())]
    assert sorted(model.encoded) == sorted(report.reembedded + report.added)

    index = load_index(tmp_path / "indexes" / "photos", model)
    hits = {h.metadata["path"]: h for h in index.search(np.ones(16), k=10)[0]}
    assert len(hits) == index.manifest.count == 4
    assert str(paths["cats/black"]) not in hits
    assert hits[str(paths["blue_car"])].id == ids_before[str(paths["blue_car"])]
    assert hits[str(paths["cats/tabby"])].id == ids_before[str(paths["cats/tabby"])]
    assert hits[str(paths["red_truck"])].id >= 4  # a new id for new content
    top = index.search(model.encode_image([paths["red_truck"]]), k=1)[0][0]
    assert top.metadata["path"] == str(paths["red_truck"]) and top.score == pytest.approx(1.0, abs=1e-5)
    model.encoded.clear()
    assert index.refresh().unchanged == 4 and model.encoded == []
    assert index.delete([paths["cats/tabby"]]) == 1
    assert all(h.metadata["path"] != str(paths["cats/tabby"]) for h in load_index(index.folder).search(
        np.ones(16), k=10)[0])


def test_on_disk_format_is_sqlite_json_faiss_and_never_pickle(tmp_path):
    make_images(tmp_path / "photos")
    build_photos(tmp_path, StubModel())
    folder = tmp_path / "indexes" / "photos"
    assert sorted(p.name for p in folder.iterdir()) == ["index.faiss", "manifest.json", "meta.sqlite"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model_fingerprint"] == "sha256:stub0000" and manifest["metric"] == "ip"
    assert manifest["count"] == 4 and manifest["factory"] == "Flat" and manifest["corpus_hash"].startswith("sha1:")
    rows = sqlite3.connect(folder / "meta.sqlite").execute("SELECT id, path, meta FROM items ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [0, 1, 2, 3]
    assert json.loads(rows[0][2])["caption"] == "blue car"
    package = Path(mmssl.index.__file__).parent
    for source in package.glob("*.py"):
        text = source.read_text()
        assert "import pickle" not in text and "pickle.load" not in text, source
    assert "faiss.read_index(" in (package / "index.py").read_text()
