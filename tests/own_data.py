"""Tiny real user data for the "your data, your model" tests: a folder of emoji PNGs (optionally with
captions.csv) and a Python project of standard-library modules."""

import csv
import inspect
import shutil
from pathlib import Path

from mmssl.data import emoji
from mmssl.data.corpus import load_corpus
from mmssl.data.splits import SPLITS


def stdlib_project(folder: Path, modules: tuple[str, ...]) -> Path:
    """``folder`` holding a copy of each standard-library module's source (``textwrap.py``, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in modules:
        shutil.copy(inspect.getsourcefile(__import__(name)), folder / f"{name}.py")
    return folder


def emoji_folder(root: Path, count: int = 50, captions: bool = True) -> tuple[Path, dict[str, str]]:
    """``(root/photos, {image path: CLDR name})``: ``count`` real emoji PNGs, their names in captions.csv
    when ``captions``."""
    emoji.build(root / "emoji", limit=count + 10)
    folder = root / "photos"
    folder.mkdir()
    names = {}
    for record in [r for split in SPLITS for r in load_corpus("emoji", split, root / "emoji")][:count]:
        shutil.copy(record["image"], folder)
        names[str(folder / Path(record["image"]).name)] = record["text"]
    if captions:
        with open(folder / "captions.csv", "w", newline="") as f:
            csv.writer(f).writerows([("file", "caption"), *((Path(p).name, t) for p, t in names.items())])
    assert len(list(folder.glob("*.png"))) == count
    return folder, names
