"""A 2-process (gloo) sharded build: each rank embeds its chunks, rank 0 merges them in input order;
the index equals a 1-process build (same top-10, same vectors, same metadata)."""

import json
import sqlite3

import numpy as np
import torch.distributed as dist
import torch.multiprocessing as mp

from mmssl.index import build_index, load_index
from mmssl.index.build import work_folder
from mmssl.index.faiss_index import stored_vectors
from tests.index.stub_model import StubModel, code_items

WORLD_SIZE = 2
DIM = 16
ITEMS, CHUNK, BATCH = 200, 32, 8  # chunks 0..6: rank 0 embeds 0, 2, 4, 6 (104 items), rank 1 1, 3, 5 (96)


def queries() -> np.ndarray:
    q = np.random.default_rng(5).standard_normal((6, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def worker(rank, init_file, folder, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        model = StubModel("code", DIM)
        index = build_index(folder, model, code_items(ITEMS), chunk_size=CHUNK, batch_size=BATCH, progress=False)
        hits = index.search(queries(), k=10)
        result = {"encoded": len(model.encoded), "count": index.manifest.count,
                  "ids": [[h.id for h in row] for row in hits], "scores": [[h.score for h in row] for row in hits]}
        with open(f"{out_dir}/rank{rank}.json", "w") as handle:
            json.dump(result, handle)
    finally:
        dist.destroy_process_group()


def test_two_rank_build_equals_one_rank_build(tmp_path):
    folder = tmp_path / "indexes" / "sharded"
    mp.spawn(worker, args=(str(tmp_path / "init"), str(folder), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
    assert [r["encoded"] for r in ranks] == [104, 96]  # each rank embedded only its own chunks
    assert not work_folder(folder).exists()

    single = build_index(tmp_path / "indexes" / "single", StubModel("code", DIM), code_items(ITEMS),
                         chunk_size=CHUNK, batch_size=BATCH, progress=False)
    expected = single.search(queries(), k=10)
    for result in ranks:  # every rank gets the merged index back
        assert result["count"] == ITEMS
        assert result["ids"] == [[h.id for h in row] for row in expected]
        np.testing.assert_allclose(result["scores"], [[h.score for h in row] for row in expected], atol=1e-6)
    sharded = load_index(folder)
    np.testing.assert_array_equal(stored_vectors(sharded.faiss_index)[1], stored_vectors(single.faiss_index)[1])
    query = "SELECT id, path, meta FROM items ORDER BY id"
    assert (sqlite3.connect(folder / "meta.sqlite").execute(query).fetchall()
            == sqlite3.connect(single.folder / "meta.sqlite").execute(query).fetchall())
    assert sharded.manifest.corpus_hash == single.manifest.corpus_hash
