"""Thumbs up/down on search results, kept per index as labelled pairs in a JSONL file beside it.

    log = FeedbackLog(feedback_path(Path("indexes/my-code")))       # indexes/my-code.feedback.jsonl
    log.record("parse a query string", "strings.py:QueryParser.parse_query", "up", index="my-code")
    # later: python -m mmssl eval --index my-code --queries indexes/my-code.feedback.jsonl

One line per vote: ``{"query", "item", "label": "up"|"down", "index", "at", ...}``; ``item`` is the
reference a queries file uses (:mod:`mmssl.eval.user_queries`: an image's path, a function's
``path:function``), so the file is itself a queries file (a query's expected items are those whose
latest vote is up). The file lives beside the index folder, not in it: every index write swaps the
whole folder, and a rebuild must not lose the votes.

Appends are atomic and lose nothing: each vote is one ``write`` of one whole line to a file opened
with ``O_APPEND``, under an exclusive ``flock`` (other processes) and a lock (other threads), then
``fsync``. A line torn by a crash mid-write is ended before the next vote is appended, so it costs only
itself (the reader names its line number).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import threading
from pathlib import Path

from mmssl.eval.user_queries import DOWN, UP
from mmssl.index.feedback_pairs import FEEDBACK_SUFFIX, feedback_path

__all__ = ["FEEDBACK_SUFFIX", "FeedbackLog", "LABELS", "feedback_path"]

LABELS = (UP, DOWN)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(path.resolve()), threading.Lock())


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FeedbackLog:
    """The votes of one index: append one, read them all."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def record(self, query: str, item: str, label: str, **fields) -> dict:
        """Append one vote; returns the record written.

        Raises:
            ValueError: an empty query or item, or a label other than ``"up"``/``"down"``.
        """
        query = " ".join(str(query or "").split())
        if not query or not item:
            raise ValueError("a vote needs the query and the result it is about; search first, then vote")
        if label not in LABELS:
            raise ValueError(f"a vote is {UP!r} or {DOWN!r}, not {label!r}")
        at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        record = {"query": query, "item": item, "label": label, **fields, "at": at}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _thread_lock(self.path):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if self._torn():
                    _write_all(fd, b"\n")
                _write_all(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)  # closing releases the flock
        return record

    def _torn(self) -> bool:
        """Whether the file ends inside a line (a write cut short by a crash)."""
        size = self.path.stat().st_size
        if size == 0:
            return False
        with open(self.path, "rb") as f:
            f.seek(size - 1)
            return f.read(1) != b"\n"

    def records(self) -> list[dict]:
        """Every whole vote, oldest first (a torn line is skipped)."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def counts(self) -> dict[str, int]:
        """``{"up": .., "down": .., "queries": ..}`` over the votes."""
        records = self.records()
        return {UP: sum(r.get("label") == UP for r in records), DOWN: sum(r.get("label") == DOWN for r in records),
                "queries": len({r.get("query") for r in records})}
