"""A user's folder of images as a corpus: walk it, decode every image once, caption it.

Layout the user provides::

    my_photos/
      captions.csv          optional: columns ``file,caption`` (file relative to the folder, or a
                            bare file name); several rows for one file give several captions
      cats/tom_on_sofa.jpg  any depth; .png .jpg .jpeg .webp (any case)
      red-fire-truck.png    no caption row: the caption is the file name, "red fire truck"

Files that are not images are ignored; image files that do not decode (0-byte files, text files
named ``.jpg``, truncated PNGs) and bad ``captions.csv`` rows are skipped and counted by reason in a
:class:`~mmssl.data.report.CorpusReport`, never raised. Images are referenced, never copied, and
no decoded image is kept, so memory stays bounded by the record metadata.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from mmssl.data.corpus import write_splits
from mmssl.data.imageio import IMAGE_EXTENSIONS, ImageDecodeError, open_image
from mmssl.data.report import CorpusReport
from mmssl.data.splits import split_of

SOURCE = "folder"
CAPTIONS_FILE = "captions.csv"


class ImageFolderNotFoundError(FileNotFoundError):
    """The folder to scan does not exist or is not a folder."""


def caption_from_filename(path: str | Path) -> str:
    """``"cats/red_fire-truck.v2.png"`` -> ``"red fire truck.v2"``: the stem, ``_``/``-`` as spaces."""
    stem = Path(path).stem
    caption = re.sub(r"[\s_-]+", " ", stem).strip()
    return caption or Path(path).name


def _csv_key(name: str) -> str:
    """The form a ``captions.csv`` file name is matched in: a relative POSIX path without ``./``."""
    parts = [p for p in PurePosixPath(name.strip().replace("\\", "/")).parts if p not in (".", "")]
    return "/".join(parts)


def read_captions_csv(folder: Path, report: CorpusReport) -> dict[str, list[tuple[int, str]]]:
    """``<folder>/captions.csv`` -> {file key: [(line number, caption), ...]}; {} when absent.

    A file that cannot be read as CSV with ``file`` and ``caption`` columns is reported and
    ignored (captions then fall back to file names); bad rows are reported one by one.
    """
    path = Path(folder) / CAPTIONS_FILE
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheet exports start with a BOM
    except UnicodeDecodeError:
        report.skip("captions.csv: not UTF-8 text", str(path))
        return {}
    except OSError as e:
        report.skip("captions.csv: unreadable", f"{path}: {e}")
        return {}
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)  # strict: a stray quote is an error
    captions: dict[str, list[tuple[int, str]]] = {}
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        if "file" not in header or "caption" not in header:
            report.skip("captions.csv: no 'file,caption' header", f"{path}: header {header[:4]}")
            return {}
        file_col, caption_col = header.index("file"), header.index("caption")
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines are harmless
            file = row[file_col].strip() if file_col < len(row) else ""
            caption = row[caption_col].strip() if caption_col < len(row) else ""
            if not file or not caption:
                report.skip("captions.csv: row without file or caption", f"{path}:{line}")
                continue
            captions.setdefault(_csv_key(file), []).append((line, caption))
    except csv.Error as e:  # e.g. a NUL byte or an unterminated quote: keep the rows read so far
        report.skip("captions.csv: malformed CSV", f"{path}:{reader.line_num}: {e}")
    return captions


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder``, sorted, skipping hidden files and folders (``.thumbnails``)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(Path(root) / name)
    return found


def scan_image_folder(folder: Path, report: CorpusReport | None = None) -> list[dict]:
    """Walk ``folder`` recursively and return one record per decodable image.

    Record: ``{"id": "folder:<relative path>", "image": <absolute path>, "text": <caption>,
    "captions": [...], "group": <relative subfolder, "" at the top>, "source": "folder",
    "mtime": <seconds>, "size": <bytes>, "width": <px>, "height": <px>}``.

    Skipped files and ``captions.csv`` problems go to ``report`` (by reason, with the path).

    Raises:
        ImageFolderNotFoundError: ``folder`` does not exist or is not a folder.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ImageFolderNotFoundError(f"{folder}: no such folder; pass a folder that contains images")
    folder = folder.resolve()
    report = report if report is not None else CorpusReport(SOURCE)
    captions_by_file = read_captions_csv(folder, report)
    used: set[str] = set()
    records = []
    captioned_from_csv = 0
    files = image_files(folder)
    for path in tqdm(files, desc=f"scanning {folder.name}", unit="img", disable=len(files) < 500):
        rel = path.relative_to(folder).as_posix()
        try:
            stat = path.stat()
            with open_image(path) as image:  # decoded once to prove it is readable, then dropped
                width, height = image.size
        except ImageDecodeError as e:
            report.skip(e.reason, str(path))
            continue
        except OSError as e:  # vanished or unreadable between the walk and the stat
            report.skip("unreadable file", f"{path}: {e}")
            continue
        key = rel if rel in captions_by_file else path.name
        rows = captions_by_file.get(key, [])
        if rows:
            used.add(key)
            captioned_from_csv += 1
        captions = list(dict.fromkeys(c for _, c in rows)) or [caption_from_filename(path)]
        parent = PurePosixPath(rel).parent.as_posix()
        records.append({
            "id": f"{SOURCE}:{rel}", "image": str(path), "text": captions[0], "captions": captions,
            "group": "" if parent == "." else parent, "source": SOURCE,
            "mtime": stat.st_mtime, "size": stat.st_size, "width": width, "height": height,
        })
    for key, rows in captions_by_file.items():
        if key not in used:
            for line, _ in rows:
                report.skip("captions.csv: no such image", f"{folder / CAPTIONS_FILE}:{line}: {key}")
    report.extra["images"] = len(records)
    report.extra["captioned_from_csv"] = captioned_from_csv
    return records


def build_folder_corpus(folder: Path, out_dir: Path, *, split_by_folder: bool = False) -> CorpusReport:
    """Scan ``folder`` and write it as a corpus (``<out_dir>/{train,valid,test}.jsonl`` + report.json).

    Image paths in the records are absolute (the images stay where they are), which
    :func:`mmssl.data.corpus.load_corpus` keeps as they are.

    Args:
        split_by_folder: keep each subfolder in one split (use when a subfolder holds near-duplicates,
            e.g. a burst of photos); by default each image is split on its own, so a flat folder
            still gets train, valid and test images.
    """
    out_dir = Path(out_dir)
    report = CorpusReport(SOURCE)
    records = scan_image_folder(folder, report)
    for record in records:
        record["split"] = split_of(record["group"] if split_by_folder else record["id"])
    report.pairs = write_splits(records, out_dir)
    report.extra["folder"] = str(Path(folder).expanduser().resolve())
    report.extra["split_by"] = "folder" if split_by_folder else "file"
    report.save(out_dir / "report.json")
    return report
