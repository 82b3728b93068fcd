"""Evaluation on the user's own queries: read a queries file, match its expected items to an index's
items, and score each system's full ranking (MRR, Recall@K from :mod:`mmssl.eval.metrics`).

A queries file is TSV or JSONL (told apart by the first non-blank line: JSONL starts with ``{``)::

    a red fire truck<TAB>vehicles/fire_truck.png;vehicles/engine.jpg
    {"query": "parse a query string into a dict", "expected": ["strings.py:QueryParser.parse_query"]}

Thumbs up/down feedback lines (:mod:`mmssl.app.feedback`: ``{"query", "item", "label": "up"|"down"}``)
are read too: a query's expected items are those whose latest vote is up; a query with none is left
out (and counted). An expected item names:

* for an image index, an image file, relative to the indexed folder or absolute;
* for a code index, a file (``path``, every function in it counts) or one function
  (``path:function``, the qualified ``Class.method`` or the bare name, every function of that name
  in the file counting); ``path`` is relative to the indexed project, or ``repo/path``.

Every query is ranked against every item of the index (no candidate sampling), ties pessimistic.
This module knows no index: :mod:`mmssl.index.user_eval` hands it the items and the score matrices.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmssl.eval.metrics import mrr_from_ranks, random_baseline, ranks_of_gold, recall_from_ranks

KS = (1, 5, 10)
UP, DOWN = "up", "down"


class QueriesFileError(ValueError):
    """A queries file (or pasted text) that cannot be read: the message names the line and the fix."""


class ExpectedItemError(ValueError):
    """Expected items that are not in the index: the message lists each one and says what to do."""


@dataclass
class UserQuery:
    """One query of the user's file, its expected item references, and where it was written."""

    text: str
    expected: list[str]
    line: int  # 1-based line of the file (the last vote's line for feedback)


# ------------------------------------------------------------------------------------ reading

def _split_expected(field: str) -> list[str]:
    return [part.strip() for part in field.split(";") if part.strip()]


def _tsv_query(line: str, where: str) -> UserQuery:
    query, tab, expected = line.partition("\t")
    if not tab:
        raise QueriesFileError(f"{where}: no tab; write the query, a TAB, then the expected item(s) separated by ';'")
    if not query.strip() or not _split_expected(expected):
        raise QueriesFileError(f"{where}: the query and at least one expected item must be non-empty")
    return UserQuery(" ".join(query.split()), _split_expected(expected), 0)


def _json_expected(value, where: str) -> list[str]:
    if isinstance(value, str):
        return _split_expected(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise QueriesFileError(f"{where}: 'expected' must be a string or a list of strings")


def _json_record(line: str, where: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise QueriesFileError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict):
        raise QueriesFileError(f"{where}: a JSONL line must be an object with 'query' and 'expected'")
    query = record.get("query", record.get("text"))
    if not isinstance(query, str) or not query.strip():
        raise QueriesFileError(f"{where}: a JSON query needs a non-empty 'query' string")
    return record


def _fold_votes(votes: list[tuple[int, str, str, str]]) -> tuple[list[UserQuery], int]:
    """Feedback votes (line, query, item, label), oldest first -> queries with their up-voted items
    (the latest vote on a (query, item) pair wins) and how many voted queries had no up vote left."""
    latest: dict[str, dict[str, tuple[int, str]]] = {}
    for line, query, item, label in votes:
        latest.setdefault(query, {})[item] = (line, label)
    queries, without = [], 0
    for query, items in latest.items():
        positives = [item for item, (_, label) in items.items() if label == UP]
        if positives:
            queries.append(UserQuery(query, positives, max(line for line, _ in items.values())))
        else:
            without += 1
    return queries, without


def parse_user_queries(text: str, name: str = "queries") -> tuple[list[UserQuery], dict]:
    """Queries from the text of a TSV or JSONL queries file (see the module docstring).

    Returns:
        ``(queries, info)``; ``info`` has ``format`` and ``no_positive`` (feedback queries left out
        because their every vote is down).

    Raises:
        QueriesFileError: a line that does not parse (named ``name:LINE``), or no query at all.
    """
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")]
    if not lines:
        raise QueriesFileError(f"{name} holds no queries; write one a line: query<TAB>expected[;expected...] "
                               'or {"query": ..., "expected": [...]}')
    json_lines = lines[0][1].lstrip().startswith("{")
    queries: list[UserQuery] = []
    votes: list[tuple[int, str, str, str]] = []
    for number, line in lines:
        where = f"{name}:{number}"
        if not json_lines:
            query = _tsv_query(line, where)
            query.line = number
            queries.append(query)
            continue
        record = _json_record(line.strip(), where)
        text_ = " ".join(str(record.get("query", record.get("text"))).split())
        if "expected" in record:
            queries.append(UserQuery(text_, _json_expected(record["expected"], where), number))
        elif isinstance(record.get("item"), str) and record.get("label") in (UP, DOWN):
            votes.append((number, text_, record["item"], record["label"]))
        else:
            raise QueriesFileError(f"{where}: give 'expected' (a list of items), or 'item' with 'label' "
                                   f"{UP!r} or {DOWN!r} (a feedback vote)")
        if "expected" in record and not queries[-1].expected:
            raise QueriesFileError(f"{where}: 'expected' is empty; name at least one item")
    voted, no_positive = _fold_votes(votes)
    queries += voted
    if not queries:
        raise QueriesFileError(f"{name} has no query with an expected item (every feedback vote is down); "
                               "vote a good result up, or write query<TAB>expected lines")
    return queries, {"format": "jsonl" if json_lines else "tsv", "no_positive": no_positive}


def read_user_queries(path: str | Path) -> tuple[list[UserQuery], dict]:
    """:func:`parse_user_queries` of a file.

    Raises:
        FileNotFoundError: no such file.
        QueriesFileError: as :func:`parse_user_queries`.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no queries file {path}; write one query a line: query<TAB>expected[;expected...]")
    return parse_user_queries(path.read_text(encoding="utf-8"), str(path))


# ------------------------------------------------------------------------------------ matching

def code_reference(metadata: dict, with_repo: bool = False) -> str:
    """How a code item is named in a queries file: ``path:function`` (``repo/path:function`` with ``with_repo``)."""
    path = f"{metadata['repo']}/{metadata['path']}" if with_repo and metadata.get("repo") else metadata["path"]
    return f"{path}:{metadata.get('func_name', '')}"


def _code_keys(metadata: dict) -> list[str]:
    """Every reference that names this function or its file."""
    paths = [metadata["path"]] + ([f"{metadata['repo']}/{metadata['path']}"] if metadata.get("repo") else [])
    name = str(metadata.get("func_name", ""))
    names = {name, name.rpartition(".")[2]}
    return paths + [f"{p}:{n}" for p in paths for n in names if n]


def _image_keys(metadata: dict, base_folder: str | None) -> list[str]:
    path = os.path.normpath(metadata["path"])
    keys = [path, os.path.realpath(path)]
    if base_folder and path.startswith(base_folder.rstrip(os.sep) + os.sep):
        keys.append(Path(os.path.relpath(path, base_folder)).as_posix())
    return keys


def _normal_reference(reference: str, kind: str, base_folder: str | None) -> str:
    reference = reference.strip().replace("\\", "/")
    if kind == "code":
        return reference.removeprefix("./")
    if os.path.isabs(reference):
        return os.path.normpath(reference)
    return Path(os.path.normpath(reference)).as_posix()


def relevance_matrix(queries: Sequence[UserQuery], items: Sequence[dict], kind: str,
                     base_folder: str | None = None, index_name: str = "the index") -> np.ndarray:
    """(Q, N) bool: item ``j`` (a metadata dict with ``path``) is expected for query ``i``.

    Args:
        kind: ``"image"`` or ``"code"`` (how references are read; see the module docstring).
        base_folder: the indexed folder, which relative image paths are relative to.

    Raises:
        ExpectedItemError: some expected items match no item; every one is listed with its line.
    """
    where: dict[str, list[int]] = {}
    for j, metadata in enumerate(items):
        keys = _code_keys(metadata) if kind == "code" else _image_keys(metadata, base_folder)
        for key in dict.fromkeys(keys):
            where.setdefault(key, []).append(j)
    relevance = np.zeros((len(queries), len(items)), dtype=bool)
    missing = []
    for i, query in enumerate(queries):
        for reference in query.expected:
            found = where.get(_normal_reference(reference, kind, base_folder))
            if not found:
                missing.append(f"line {query.line}: {reference!r} (query {query.text!r})")
                continue
            relevance[i, found] = True
    if missing:
        form = ("an image path relative to the indexed folder" + (f" {base_folder}" if base_folder else "")
                + " or absolute") if kind == "image" else "path or path:function, path relative to the project"
        raise ExpectedItemError(f"{len(missing)} expected item(s) are not in {index_name}:\n  " + "\n  ".join(missing)
                                + f"\nName each as {form}; if the file is new, refresh or rebuild the index first.")
    return relevance


# ------------------------------------------------------------------------------------ scoring

def system_row(system: str, scores: np.ndarray, relevance: np.ndarray, ks: Sequence[int] = KS,
               note: str = "") -> dict:
    """One system's MRR, Recall@K and per-query ranks from its (Q, N) scores (pessimistic ties)."""
    ranks = ranks_of_gold(torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float64)),
                          torch.from_numpy(relevance))
    row = {"system": system, "mrr": mrr_from_ranks(ranks)}
    row.update({f"recall@{k}": v for k, v in recall_from_ranks(ranks, ks).items()})
    row.update({"ranks": ranks.tolist(), "note": note})
    return row


def random_row(relevance: np.ndarray, ks: Sequence[int] = KS) -> dict:
    """The expected metrics of a uniformly random ranking of the same items (exact, not sampled)."""
    expected = random_baseline(relevance.shape[1], relevance.sum(axis=1).tolist(), ks)
    return {"system": "random (expected)", "mrr": expected["mrr"],
            **{f"recall@{k}": expected[f"recall@{k}"] for k in ks}, "ranks": None, "note": "exact expectation"}


def format_user_table(results: dict) -> str:
    """The results of :func:`mmssl.index.user_eval.evaluate_index_queries` as a plain-text table."""
    from mmssl.eval.evaluate import _fmt, _table

    ks = results.get("ks", list(KS))
    header = ["system", "MRR", *[f"R@{k}" for k in ks], "note"]
    lines = [[row["system"], _fmt(row["mrr"]), *[_fmt(row[f"recall@{k}"]) for k in ks], row.get("note", "")]
             for row in results["rows"]]
    title = (f"{results['index']}: {results['num_queries']} queries ranked over all {results['num_items']} "
             f"{results['kind']} items (pessimistic ties)")
    notes = [f"  {note}" for note in results.get("notes", [])]
    return "\n".join([title, "", _table(header, lines, left=1), *([""] + notes if notes else [])])
