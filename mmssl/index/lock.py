"""One writer per index: :func:`writer_lock` holds an exclusive ``flock`` on ``.NAME.lock`` for the
whole build or write, so a second one (another process, or another thread of this one) fails at once
with :class:`~mmssl.index.errors.IndexBusyError` naming the index, instead of racing the first for the
same temp folder. The kernel drops the lock when its holder exits, even on ``kill -9``. The folder
swap itself is :func:`mmssl.io.replace_folder`.
"""

from __future__ import annotations

import fcntl
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
