"""Resumable, chunked builds: a build killed with SIGKILL resumes from its last complete chunk, the
result equals an uninterrupted build, and the old index stays loadable in between."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmssl.index import build_index, load_index
from mmssl.index.build import work_folder
from mmssl.index.faiss_index import stored_vectors
from tests.index.stub_model import StubModel, code_items, hashed_vector

ROOT = Path(__file__).resolve().parents[2]
DIM = 16
ITEMS, CHUNK, BATCH = 200, 32, 8  # 7 chunks (6 x 32 + 8), 4 model calls per full chunk


def run_worker(folder: Path, report: Path, kill_after_batches: int | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tests.index.build_worker", "--folder", str(folder), "--items", str(ITEMS),
               "--chunk-size", str(CHUNK), "--batch-size", str(BATCH), "--report", str(report)]
    if kill_after_batches is not None:
        command += ["--kill-after-batches", str(kill_after_batches)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def index_contents(folder: Path):
    index = load_index(folder)
    ids, vectors = stored_vectors(index.faiss_index)  # (N,), (N, D)
    rows = sqlite3.connect(folder / "meta.sqlite").execute("SELECT id, path, meta FROM items ORDER BY id").fetchall()
    return ids, vectors, rows, index.manifest


def test_killed_build_resumes_from_its_last_chunk(tmp_path):
    folder = tmp_path / "indexes" / "code"
    old = build_index(folder, StubModel("code", DIM), code_items(30, modules=("ast",)), progress=False)
    old_hits = [h.id for h in old.search(np.ones(DIM), k=5)[0]]
    report = tmp_path / "report.json"

    # 9 model calls: chunks 0 and 1 complete (8 calls), chunk 2 half embedded when the kill lands
    killed = run_worker(folder, report, kill_after_batches=9)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not report.exists()
    assert sorted(p.name for p in work_folder(folder).glob("*.json")) == ["chunk-000000.json", "chunk-000001.json"]
    survivor = load_index(folder, StubModel("code", DIM))  # the old index is untouched and servable
    assert survivor.manifest.count == 30 and [h.id for h in survivor.search(np.ones(DIM), k=5)[0]] == old_hits

    resumed = run_worker(folder, report)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(report.read_text())["encoded"] == ITEMS - 2 * CHUNK  # only chunks 2..6 embedded again
    assert not work_folder(folder).exists()  # finished: the work folder is gone
    assert list(folder.parent.glob(".code.tmp-*")) == []  # the killed run's staging folder was cleaned up

    straight = build_index(tmp_path / "indexes" / "straight", StubModel("code", DIM), code_items(ITEMS),
                           chunk_size=CHUNK, batch_size=BATCH, progress=False)
    ids, vectors, rows, manifest = index_contents(folder)
    straight_ids, straight_vectors, straight_rows, straight_manifest = index_contents(straight.folder)
    np.testing.assert_array_equal(ids, straight_ids)
    np.testing.assert_array_equal(vectors, straight_vectors)
    assert rows == straight_rows
    assert manifest.count == ITEMS and manifest.corpus_hash == straight_manifest.corpus_hash
    expected = np.stack([hashed_vector(item.content.encode(), DIM) for item in code_items(ITEMS)])  # (N, D)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_chunks_of_another_model_are_not_reused(tmp_path):
    folder = tmp_path / "ix"
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after 3 complete chunks of 2 batches
        build_index(folder, StubModel("code", DIM, fail_after_batches=6), code_items(50), chunk_size=10,
                    batch_size=5, progress=False)
    assert len(list(work_folder(folder).glob("chunk-*.npy"))) == 3
    other = StubModel("code", DIM, fingerprint="sha256:other")
    index = build_index(folder, other, code_items(50), chunk_size=10, batch_size=5, progress=False)
    assert len(other.encoded) == 50 and index.manifest.model_fingerprint == "sha256:other"


def test_resume_skips_exactly_the_complete_chunks(tmp_path):
    folder = tmp_path / "ix"
    with pytest.raises(KeyboardInterrupt):
        build_index(folder, StubModel("code", DIM, fail_after_batches=6), code_items(50), chunk_size=10,
                    batch_size=5, progress=False)
    items = code_items(50)
    items[25].content += "# edited\n"  # inside chunk 2 (items 20..29)
    model = StubModel("code", DIM)
    index = build_index(folder, model, items, chunk_size=10, batch_size=5, progress=False)
    assert model.encoded == [item.content for item in items[20:]]  # chunks 0, 1 reused; 2 changed; 3, 4 new
    got = index.search(np.stack([hashed_vector(items[25].content.encode(), DIM)]), k=1)[0][0]
    assert got.id == 25 and got.score == pytest.approx(1.0, abs=1e-5)
