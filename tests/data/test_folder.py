"""User image folders: good images captioned, every bad file reported by reason, nothing raised."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmssl.data.corpus import load_corpus
from mmssl.data.folder import (ImageFolderNotFoundError, build_folder_corpus, caption_from_filename,
                               scan_image_folder)
from mmssl.data.report import CorpusReport


def _image_bytes(fmt: str, size=(40, 30), seed=0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "cats").mkdir(parents=True)
    (root / ".thumbnails").mkdir()
    (root / "red_fire-truck.png").write_bytes(_image_bytes("PNG", seed=1))
    (root / "cats" / "tom_on_sofa.JPG").write_bytes(_image_bytes("JPEG", size=(64, 48), seed=2))
    (root / "cats" / "IMG_0001.webp").write_bytes(_image_bytes("WEBP", size=(20, 50), seed=3))
    png = _image_bytes("PNG", size=(200, 200), seed=4)
    (root / "broken.png").write_bytes(png[: len(png) // 2])  # truncated mid-IDAT
    (root / "notes.jpg").write_text("this is a text file, not a JPEG\n")
    (root / "empty.png").write_bytes(b"")
    (root / "readme.txt").write_text("not an image extension: ignored, not reported")
    (root / ".thumbnails" / "x.png").write_bytes(_image_bytes("PNG", seed=5))
    (root / "captions.csv").write_text(
        "file,caption\n"
        "cats/IMG_0001.webp,a grey cat asleep in a box\n"
        "cats/IMG_0001.webp,sleeping kitten\n"
        "tom_on_sofa.JPG,a black cat on a sofa\n"  # bare file name also matches
        "missing.png,this file does not exist\n"
        "red_fire-truck.png,\n"  # empty caption: reported, file keeps its file-name caption
    )
    return root


def test_good_images_scanned_and_captioned(folder: Path):
    report = CorpusReport("folder")
    records = scan_image_folder(folder, report)
    by_id = {r["id"]: r for r in records}
    assert sorted(by_id) == ["folder:cats/IMG_0001.webp", "folder:cats/tom_on_sofa.JPG",
                             "folder:red_fire-truck.png"]
    webp = by_id["folder:cats/IMG_0001.webp"]
    assert webp["text"] == "a grey cat asleep in a box"
    assert webp["captions"] == ["a grey cat asleep in a box", "sleeping kitten"]
    assert webp["group"] == "cats" and webp["source"] == "folder"
    assert (webp["width"], webp["height"]) == (20, 50)
    assert by_id["folder:cats/tom_on_sofa.JPG"]["captions"] == ["a black cat on a sofa"]
    truck = by_id["folder:red_fire-truck.png"]
    assert truck["captions"] == ["red fire truck"] and truck["group"] == ""
    for r in records:
        path = Path(r["image"])
        assert path.is_absolute() and path.is_file()
        assert r["size"] == path.stat().st_size and r["mtime"] == path.stat().st_mtime
    assert report.extra["images"] == 3 and report.extra["captioned_from_csv"] == 2


def test_bad_files_and_rows_reported_by_reason(folder: Path):
    report = CorpusReport("folder")
    scan_image_folder(folder, report)
    assert dict(report.skipped) == {
        "corrupt or truncated image": 1,
        "not an image": 1,
        "empty file": 1,
        "captions.csv: no such image": 1,
        "captions.csv: row without file or caption": 1,
    }
    assert report.examples["corrupt or truncated image"] == [str(folder / "broken.png")]
    assert report.examples["not an image"] == [str(folder / "notes.jpg")]
    assert report.examples["empty file"] == [str(folder / "empty.png")]
    assert report.examples["captions.csv: no such image"][0].endswith("captions.csv:5: missing.png")
    assert report.examples["captions.csv: row without file or caption"][0].endswith("captions.csv:6")


@pytest.mark.parametrize("content, reason", [
    (b"name,text\nred_fire-truck.png,a truck\n", "captions.csv: no 'file,caption' header"),
    (b"file,caption\nred_fire-truck.png,caf\xe9\n", "captions.csv: not UTF-8 text"),
    (b'file,caption\n"red_fire-truck.png,unterminated\n', "captions.csv: malformed CSV"),
    (b"", "captions.csv: no 'file,caption' header"),
])
def test_malformed_captions_csv_falls_back_to_file_names(folder: Path, content: bytes, reason: str):
    (folder / "captions.csv").write_bytes(content)
    report = CorpusReport("folder")
    records = scan_image_folder(folder, report)
    assert len(records) == 3
    assert report.skipped[reason] == 1
    assert {r["text"] for r in records} == {"red fire truck", "tom on sofa", "IMG 0001"}


def test_no_captions_csv_is_fine(folder: Path):
    (folder / "captions.csv").unlink()
    report = CorpusReport("folder")
    records = scan_image_folder(folder, report)
    assert len(records) == 3
    assert not any(reason.startswith("captions.csv") for reason in report.skipped)
    assert report.extra["captioned_from_csv"] == 0


def test_build_folder_corpus_loads_with_absolute_paths(folder: Path, tmp_path: Path):
    out = tmp_path / "corpus"
    report = build_folder_corpus(folder, out)
    assert report.total == 3 and (out / "report.json").is_file()
    loaded = []
    for split in ("train", "valid", "test"):
        loaded += list(load_corpus("folder", split, root=out))
    assert sorted(r["id"] for r in loaded) == ["folder:cats/IMG_0001.webp", "folder:cats/tom_on_sofa.JPG",
                                               "folder:red_fire-truck.png"]
    assert all(Path(r["image"]).is_absolute() and Path(r["image"]).is_file() for r in loaded)
    by_folder = build_folder_corpus(folder, tmp_path / "by_folder", split_by_folder=True)
    assert sorted(by_folder.pairs.values()) in ([0, 1, 2], [0, 0, 3])  # "cats" stays together


def test_missing_folder_raises_clear_error(tmp_path: Path):
    with pytest.raises(ImageFolderNotFoundError, match="no such folder"):
        scan_image_folder(tmp_path / "nope")


def test_caption_from_filename():
    assert caption_from_filename("a/red_fire-truck.png") == "red fire truck"
    assert caption_from_filename("__--.png") == "__--.png"
