"""Atomic file writes and the crash-safe folder swap of mmssl.io."""

import os
import subprocess
import sys

import numpy as np
import pytest

from mmssl import io


def test_write_json_replaces_the_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "result.json"
    io.write_json(path, {"mrr": 0.5}, indent=2)
    io.write_json(path, {"mrr": 0.75, "name": "é"}, ensure_ascii=False)
    assert path.read_text(encoding="utf-8") == '{"mrr": 0.75, "name": "é"}\n'
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "vectors.npy"
    np.save(path, np.arange(3, dtype=np.float32))
    with pytest.raises(RuntimeError):
        with io.atomic_open(path, "wb") as handle:
            np.save(handle, np.zeros(5, dtype=np.float32))
            raise RuntimeError("killed mid-write")
    np.testing.assert_array_equal(np.load(path), [0.0, 1.0, 2.0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.npy"]


def test_atomic_path_gives_each_writer_its_own_temp_name(tmp_path):
    path = tmp_path / "a.txt"
    with io.atomic_path(path) as first, io.atomic_path(path) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_text("first")
        second.write_text("second")
    assert path.read_text() == "first"  # the outer block ends last and wins


def _folder(path, text):
    path.mkdir(parents=True)
    (path / "data.txt").write_text(text)
    return path


def test_replace_folder_swaps_in_the_new_copy(tmp_path):
    final = _folder(tmp_path / "index", "old")
    new = io.temp_folder(final)
    (new / "data.txt").write_text("new")
    io.replace_folder(new, final)
    assert (final / "data.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_recover_folder_puts_back_the_old_copy_after_a_kill_between_the_renames(tmp_path):
    final = _folder(tmp_path / "index", "old")
    os.replace(final, tmp_path / f".index.old-{_dead_pid()}")  # the first rename happened, the second did not
    io.recover_folder(final)
    assert (final / "data.txt").read_text() == "old"
    io.recover_folder(final)  # a complete folder is left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_recover_folder_leaves_a_live_writers_swap_alone(tmp_path):
    final = _folder(tmp_path / "index", "old")
    mid_swap = tmp_path / f".index.old-{os.getpid()}"  # this process (another thread) is between its renames
    os.replace(final, mid_swap)
    io.recover_folder(final)
    assert not final.exists() and (mid_swap / "data.txt").read_text() == "old"


def test_an_error_between_the_renames_is_undone_by_the_writer(tmp_path, monkeypatch):
    final = _folder(tmp_path / "index", "old")
    new = io.temp_folder(final)
    real_replace, calls = os.replace, []

    def failing_second_rename(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", failing_second_rename)
    with pytest.raises(OSError, match="disk full"):
        io.replace_folder(new, final)
    assert (final / "data.txt").read_text() == "old" and new.is_dir()


def test_temp_folder_removes_leftovers_of_dead_processes_only(tmp_path):
    final = tmp_path / "index"
    dead = _folder(tmp_path / ".index.tmp-999999999", "half")  # no such pid
    alive = _folder(tmp_path / f".index.tmp-{os.getppid()}", "in progress")
    fresh = io.temp_folder(final)
    assert fresh.name == f".index.tmp-{os.getpid()}" and list(fresh.iterdir()) == []
    assert not dead.exists() and alive.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, alive.name])
