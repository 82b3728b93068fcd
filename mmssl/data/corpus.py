"""Reading and writing built corpora: one JSONL file per split, loaded through HF ``datasets``.

A built corpus is a folder ``data/corpora/<name>/`` holding ``train.jsonl``, ``valid.jsonl``,
``test.jsonl`` and ``report.json`` (a :class:`~mmssl.data.report.CorpusReport`).

Image corpora share one record schema::

    {"id": "emoji:1f600", "image": "images/1f600.png", "text": "grinning face",
     "captions": ["grinning face", "face", "grin"], "group": "1f600", "split": "train",
     "source": "emoji"}

``image`` is relative to the corpus folder (so a data folder can move); :func:`load_corpus` makes it
absolute. Code corpora use CodeSearchNet's fields (see :mod:`mmssl.data.code`).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path
from typing import Iterable, Mapping

from mmssl.data.paths import corpus_dir
from mmssl.data.report import CorpusReport
from mmssl.data.splits import ALL_SPLITS, SPLITS
from mmssl.io import atomic_open


class CorpusNotBuiltError(FileNotFoundError):
    """The corpus has not been built yet; the message says which command builds it."""


def write_splits(records: Iterable[dict], out_dir: Path, splits: tuple[str, ...] = SPLITS) -> dict[str, int]:
    """Write records to ``<out_dir>/<split>.jsonl`` by their ``split`` field, atomically.

    Returns the number of records per split. Each file is written to a temp name and renamed, so
    a reader never sees a half-written split. ``splits`` adds ``"unseen"`` for the corpora that
    hold out whole icon sets.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {s: 0 for s in splits}
    with contextlib.ExitStack() as stack:
        handles = {s: stack.enter_context(atomic_open(out_dir / f"{s}.jsonl")) for s in splits}
        for rec in records:
            split = rec["split"]
            handles[split].write(json.dumps(rec, ensure_ascii=False) + "\n")
            counts[split] += 1
    return counts


def split_file(name: str, split: str, root: Path | None = None) -> Path:
    """Path of one split's JSONL; raises :class:`CorpusNotBuiltError` with the fix if missing."""
    if split not in ALL_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(ALL_SPLITS)}")
    folder = Path(root) if root is not None else corpus_dir(name)
    path = folder / f"{split}.jsonl"
    if not path.exists():
        raise CorpusNotBuiltError(f"corpus {name!r} is not built ({path} missing); run `python -m mmssl data build {name}`")
    return path


def load_corpus(name: str, split: str, root: Path | None = None):
    """Load one split as a ``datasets.Dataset`` (image paths made absolute)."""
    from datasets import load_dataset

    path = split_file(name, split, root)
    folder = path.parent.resolve()  # a relative root must still give absolute image paths
    if path.stat().st_size == 0:
        from datasets import Dataset

        return Dataset.from_list([])
    ds = load_dataset("json", data_files=str(path), split="train")
    if "image" in ds.column_names:
        ds = ds.map(lambda b: {"image": [str(folder / p) for p in b["image"]]}, batched=True)
    return ds



def split_records(name: str, split: str, limit: int | None = None, seed: int | None = None) -> list[dict]:
    """One split of a corpus as dicts, at most ``limit`` of them: its first rows, or (``seed`` given) a
    seeded uniform sample in corpus order (corpora are sorted by source, so the first rows are a few
    sources only)."""
    import random

    ds = load_corpus(name, split)
    if limit is not None and limit < len(ds):
        rows = range(limit) if seed is None else sorted(random.Random(seed).sample(range(len(ds)), limit))
        ds = ds.select(rows)
    return ds.to_list()

def spread_sample(items: list, limit: int | None) -> list:
    """``limit`` items evenly spread over ``items`` (first one included)."""
    if limit is None or limit >= len(items):
        return items
    return [items[i * len(items) // limit] for i in range(max(limit, 0))]


def saved_report(out_dir: Path, limit: int | None) -> CorpusReport | None:
    """The saved report of a complete build made with the same ``limit``, else None (rebuild)."""
    report_path = out_dir / "report.json"
    if report_path.exists() and all((out_dir / f"{s}.jsonl").exists() for s in SPLITS):
        saved = CorpusReport.load(report_path)
        if saved.extra.get("limit") == limit:
            return saved
    return None


def finish_build(records: list[dict], report: CorpusReport, out_dir: Path, started: float,
                 splits: tuple[str, ...] = SPLITS, **extra) -> CorpusReport:
    """Write the splits, record groups per split, ``extra`` and the build time in the report, save it.

    ``started`` is the build's ``time.perf_counter()`` at its start.
    """
    report.pairs = write_splits(records, out_dir, splits)
    report.extra.update({
        "groups_per_split": {s: len({r["group"] for r in records if r["split"] == s}) for s in splits},
        **extra,
        "build_seconds": round(time.perf_counter() - started, 2),
    })
    report.save(out_dir / "report.json")
    return report


def count_by_split(records: list[dict], field: str) -> dict[str, dict[str, int]]:
    """``{value of field: {split: records}}``, e.g. pairs per icon set and split."""
    out: dict[str, dict[str, int]] = {}
    for r in records:
        counts = out.setdefault(r[field], {})
        counts[r["split"]] = counts.get(r["split"], 0) + 1
    return out


def concept_splits(folder: Path) -> dict[str, str]:
    """``{group: split of that concept}`` of one built corpus folder, read from its JSONL files.

    An image of a held-out set sits in ``unseen`` but keeps its concept's split in ``concept_split``,
    and that concept split is what must agree across corpora."""
    out: dict[str, str] = {}
    for split in ALL_SPLITS:
        path = Path(folder) / f"{split}.jsonl"
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                out[_comparable(rec["group"])] = rec.get("concept_split", rec["split"])
    return out


def _comparable(group: str) -> str:
    return " ".join(re.split(r"[-_\s]+", group.casefold())).strip()


def split_conflicts(folders: Mapping[str, Path]) -> list[tuple[str, str, str, str, str]]:
    """Concepts whose split differs between two corpora: ``(group, corpus_a, split_a, corpus_b,
    split_b)``, sorted. Empty when every corpus splits by the same concept key (no cross-corpus leak)."""
    splits = {name: concept_splits(folder) for name, folder in folders.items()}
    names = sorted(splits)
    return sorted((group, a, splits[a][group], b, splits[b][group])
                  for i, a in enumerate(names) for b in names[i + 1:]
                  for group in splits[a].keys() & splits[b].keys() if splits[a][group] != splits[b][group])
