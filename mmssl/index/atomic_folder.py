"""Replacing a whole index folder so that a crash never leaves a half-written index behind.

A write builds the complete new folder beside the old one (``.NAME.tmp-<pid>``), then swaps:
``NAME -> .NAME.old-<pid>``, ``.NAME.tmp-<pid> -> NAME``, delete the old one. Each rename is
atomic; a crash between the two renames leaves only ``.NAME.old-<pid>``, which
:func:`recover_folder` (called by ``load_index``) puts back. A process killed mid-write leaves its
``.NAME.tmp-<pid>``; the next write removes temp folders whose process is gone.

One writer at a time: :func:`writer_lock` holds an exclusive ``flock`` on ``.NAME.lock`` for the
whole build or write, so a second one (another process, or another thread of this one) fails at
once with :class:`~mmssl.index.errors.IndexBusyError` naming the index, instead of racing the first
for the same temp folder. The kernel drops the lock when its holder exits, even on ``kill -9``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmssl.index.errors import IndexBusyError
from mmssl.index.layout import lock_path


@contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Hold the index's writer lock for the block; raise :class:`IndexBusyError` if someone else holds it."""
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # a fresh open file: flock then excludes other threads of this process too
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusyError(f"index {folder.name} is being built or changed by another job right now (it "
                                 f"holds {path}); wait for that to finish, then try again") from None
        yield
    finally:
        handle.close()  # closing the file releases the lock


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def temp_folder(folder: Path) -> Path:
    """A fresh, empty ``.NAME.tmp-<pid>`` beside ``folder`` (leftovers of dead processes are removed)."""
    for leftover in folder.parent.glob(f".{folder.name}.tmp-*"):
        pid = leftover.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def replace_folder(new: Path, folder: Path) -> None:
    """Move the complete folder ``new`` to ``folder``, replacing what is there."""
    old = folder.parent / f".{folder.name}.old-{os.getpid()}"
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        os.replace(folder, old)
    os.replace(new, folder)
    shutil.rmtree(old, ignore_errors=True)


def recover_folder(folder: Path) -> None:
    """If a swap was interrupted (``folder`` gone, an ``.old`` copy left), put the old copy back."""
    if folder.exists():
        return
    leftovers = sorted(folder.parent.glob(f".{folder.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if leftovers:
        os.replace(leftovers[-1], folder)
