"""Atomic writes: a reader sees the old file (or folder) or the complete new one, never half of one.

Files: :func:`atomic_path` yields a temp path in the target's folder; when the block ends without
an error the temp file is fsynced and renamed onto the target (``os.replace`` is atomic on one file
system), otherwise it is removed. :func:`write_text`, :func:`write_bytes` and :func:`write_json`
cover the common cases; :func:`atomic_open` gives a file handle (``np.save``, ``csv``, PIL).

Folders: a writer fills :func:`temp_folder` (``.NAME.tmp-<pid>`` beside ``NAME``), then
:func:`replace_folder` swaps it in with two renames: ``NAME -> .NAME.old-<pid>``, then
``.NAME.tmp-<pid> -> NAME``, and only then deletes the old copy. A kill between the two renames
leaves no ``NAME`` but a complete ``.NAME.old-<pid>``, which :func:`recover_folder` (every loader
calls it first) puts back once that process is gone; an error (not a kill) between the renames is
undone by the writer itself. A writer killed while filling its temp folder leaves ``.NAME.tmp-<pid>``;
the next :func:`temp_folder` removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import IO, Any, Iterator


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside ``path`` that becomes ``path`` when the block ends without an error.

    The temp name is ``.NAME.<random>.tmp``, unique per call, so concurrent writers in one process
    never share it; it keeps no suffix, so pass ``format=`` where a library guesses from the name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """``open(path, mode)`` whose file appears at ``path`` only once the block has finished cleanly."""
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as handle:
        yield handle


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any, **dumps_kwargs) -> Path:
    """Write ``json.dumps(data, **dumps_kwargs)`` and a newline to ``path`` atomically."""
    return write_text(path, json.dumps(data, **dumps_kwargs) + "\n")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _left_by_dead_process(leftover: Path) -> bool:
    """Whether a ``.NAME.tmp-<pid>`` / ``.NAME.old-<pid>`` folder's writer is gone (this process counts as
    alive: another of its threads may be mid-swap)."""
    pid = leftover.name.rsplit("-", 1)[-1]
    return pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid))


def temp_folder(folder: str | Path) -> Path:
    """A fresh, empty ``.NAME.tmp-<pid>`` beside ``folder`` (leftovers of dead processes are removed)."""
    folder = Path(folder)
    for leftover in folder.parent.glob(f".{folder.name}.tmp-*"):
        if _left_by_dead_process(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def replace_folder(new: str | Path, folder: str | Path) -> Path:
    """Move the complete folder ``new`` to ``folder``; the old ``folder`` is deleted only after."""
    new, folder = Path(new), Path(folder)
    old = folder.parent / f".{folder.name}.old-{os.getpid()}"
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        os.replace(folder, old)
    try:
        os.replace(new, folder)
    except BaseException:
        if old.exists() and not folder.exists():
            os.replace(old, folder)  # this process is still here to undo its first rename
        raise
    shutil.rmtree(old, ignore_errors=True)
    return folder


def recover_folder(folder: str | Path) -> None:
    """If a swap was killed (``folder`` gone, an ``.old`` copy of a dead writer left), put the old copy back.

    A live writer's ``.old`` is left alone: it is between its two renames and finishes the swap itself.
    """
    folder = Path(folder)
    if folder.exists():
        return
    leftovers = sorted((p for p in folder.parent.glob(f".{folder.name}.old-*") if _left_by_dead_process(p)),
                       key=lambda p: p.stat().st_mtime)
    if leftovers:
        os.replace(leftovers[-1], folder)
