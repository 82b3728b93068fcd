"""What a careless or hostile user can do to indexes (issue 14): replace one by accident, build one name
twice at once, corrupt a file, index images with a code model, leave a failed build's folder behind."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from mmssl.cli import main
from mmssl.index import (IndexBusyError, IndexCorruptError, IndexExistsError, IndexModelMismatchError, build_index,
                         image_folder_items, load_index)
from mmssl.index.lock import writer_lock
from tests.index.stub_model import StubModel
from tests.index.test_index_writes import build_photos, make_images


@pytest.fixture
def photos(tmp_path):
    make_images(tmp_path / "photos")
    build_photos(tmp_path, StubModel())
    return tmp_path / "indexes" / "photos"


def test_replace_false_refuses_an_existing_index(tmp_path, photos):
    before = (photos / "manifest.json").read_text()
    with pytest.raises(IndexExistsError, match="an index named photos already exists"):
        build_photos(tmp_path, StubModel(), replace=False)
    assert (photos / "manifest.json").read_text() == before
    assert len(build_photos(tmp_path, StubModel(), replace=True)) == 4


class SlowModel(StubModel):
    def __init__(self):
        super().__init__()
        self.started = threading.Event()

    def encode_image(self, paths):
        self.started.set()
        time.sleep(0.6)
        return super().encode_image(paths)


def test_a_second_build_of_one_name_fails_fast_with_a_clear_message(tmp_path):
    make_images(tmp_path / "photos")
    first, errors = SlowModel(), []
    def first_build():
        try:
            build_photos(tmp_path, first)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    thread = threading.Thread(target=first_build)
    thread.start()
    assert first.started.wait(30)
    start = time.perf_counter()
    with pytest.raises(IndexBusyError, match="index photos is being built or changed by another job") as caught:
        build_photos(tmp_path, StubModel())
    assert time.perf_counter() - start < 0.5 and "Errno" not in str(caught.value)
    thread.join()
    assert not errors and len(load_index(tmp_path / "indexes" / "photos")) == 4
    assert not list((tmp_path / "indexes").glob(".photos.tmp-*"))


def test_writes_take_the_writer_lock_too(photos):
    index = load_index(photos, StubModel())
    with writer_lock(photos), pytest.raises(IndexBusyError, match="photos"):
        index.delete([index.search(StubModel().encode_text(["x"]), k=1)[0][0].metadata["path"]])
    assert len(load_index(photos)) == 4


@pytest.mark.parametrize("damage, file, says", [
    (lambda f: f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2]), "index.faiss", "FAISS cannot read it"),
    (lambda f: f.write_bytes(b"this is not a database" * 100), "meta.sqlite", "SQLite: file is not a database"),
    (lambda f: f.write_text('{"model_fingerprint": "sha256:stub0000", "kind": '), "manifest.json",
     "not a valid manifest"),
])
def test_a_corrupt_file_is_named_with_the_rebuild_command(tmp_path, photos, damage, file, says):
    damage(photos / file)
    with pytest.raises(IndexCorruptError) as caught:
        load_index(photos)
    message = str(caught.value)
    assert str(photos / file) in message and says in message
    if file != "manifest.json":  # the manifest still tells how the index was built
        assert f"python -m mmssl index build photos --model models/stub --images {tmp_path / 'photos'}" in message
    else:
        assert "python -m mmssl index build photos --model MODEL" in message


def test_a_meta_sqlite_out_of_step_with_the_manifest_is_corrupt(photos):
    with sqlite3.connect(photos / "meta.sqlite") as db:
        db.execute("DELETE FROM items WHERE id = 0")
    with pytest.raises(IndexCorruptError, match="it has 3 items; the manifest says 4"):
        load_index(photos)


def test_cli_names_the_corrupt_file(tmp_path, photos, capsys, monkeypatch):
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    (photos / "index.faiss").write_bytes(b"\0" * 10)
    assert main(["index", "info", "photos"]) == 1
    err = capsys.readouterr().err
    assert f"{photos / 'index.faiss'} is corrupt" in err and "python -m mmssl index build photos" in err


def test_image_folder_with_a_code_model_is_refused_before_embedding(tmp_path, monkeypatch, capsys):
    make_images(tmp_path / "photos")
    code_model = StubModel(kind="code")
    items, source = image_folder_items(tmp_path / "photos")
    with pytest.raises(IndexModelMismatchError, match="is a code model: it cannot embed image items"):
        build_index(tmp_path / "indexes" / "photos", code_model, items, source=source, progress=False)
    assert code_model.encoded == [] and not (tmp_path / "indexes" / "photos").exists()
    # the CLI, as the issue ran it
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    monkeypatch.setattr("mmssl.model.load_model", lambda *a, **k: code_model)
    assert main(["index", "build", "photos", "--model", "models/code-default", "--images",
                 str(tmp_path / "photos")]) == 1
    assert "cannot embed image items" in capsys.readouterr().err and code_model.encoded == []


def test_cli_build_reports_skipped_files(tmp_path, monkeypatch, capsys):
    make_images(tmp_path / "photos")
    (tmp_path / "photos" / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00")
    (tmp_path / "photos" / "notes.jpg").write_text("not an image")
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    monkeypatch.setattr("mmssl.model.load_model", lambda *a, **k: StubModel())
    assert main(["index", "build", "photos", "--model", "models/stub", "--images", str(tmp_path / "photos")]) == 0
    out = capsys.readouterr().out
    assert "4 image items" in out and "skipped 2 files:" in out
    assert "cut.png" in out and "1 not an image" in out and "notes.jpg" in out


def test_a_failed_build_leaves_no_work_folder_unless_it_can_resume(tmp_path, capsys):
    make_images(tmp_path / "photos")
    with pytest.raises(KeyboardInterrupt):
        build_photos(tmp_path, StubModel(fail_after_batches=0))  # nothing embedded
    assert not (tmp_path / "indexes" / ".photos.build").exists()
    with pytest.raises(KeyboardInterrupt):
        build_photos(tmp_path, StubModel(fail_after_batches=1), chunk_size=2)  # one chunk of 2 done
    assert (tmp_path / "indexes" / ".photos.build").is_dir()
    err = capsys.readouterr().err
    assert "2 embedded items are kept in" in err and "run the same build again to resume" in err
    model = StubModel()
    build_photos(tmp_path, model, chunk_size=2)
    assert len(model.encoded) == 2 and not (tmp_path / "indexes" / ".photos.build").exists()

