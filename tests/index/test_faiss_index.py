"""Index structure choice, exactness of Flat, HNSW/IVF builds, filters and tombstones on vectors."""

import faiss
import numpy as np
import pytest

from mmssl.index import build_index, choose_factory, load_index
from mmssl.index.errors import QueryShapeError
from mmssl.index.faiss_index import FLAT_LIMIT, HNSW_LIMIT, normalise_factory
from tests.index.stub_model import StubModel, code_items, hashed_vector

DIM = 16


def exact_ids(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ vectors.T  # (Q, N)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_choose_factory_by_size():
    assert choose_factory(10, 64) == "Flat"
    assert choose_factory(FLAT_LIMIT - 1, 64) == "Flat"
    assert choose_factory(FLAT_LIMIT, 64) == "HNSW32"
    assert choose_factory(HNSW_LIMIT - 1, 64) == "HNSW32"
    assert choose_factory(4_000_000, 64) == "IVF8000,PQ8"
    assert choose_factory(4_000_000, 30) == "IVF8000,Flat"
    assert normalise_factory("IDMap2,HNSW16") == "HNSW16"


def test_size_choice_used_by_build(tmp_path, monkeypatch):
    import mmssl.index.faiss_index as fi

    monkeypatch.setattr(fi, "FLAT_LIMIT", 50)
    monkeypatch.setattr(fi, "HNSW_LIMIT", 100)
    model = StubModel("code", DIM)
    for n, expected, inner in [(40, "Flat", faiss.IndexFlat), (60, "HNSW32", faiss.IndexHNSWFlat)]:
        index = build_index(tmp_path / f"n{n}", model, code_items(n), progress=False)
        assert index.manifest.factory == expected
        assert isinstance(faiss.downcast_index(index.faiss_index.index), inner)
    index = build_index(tmp_path / "n4000", model, code_items(4000), progress=False)
    assert index.manifest.factory == "IVF252,PQ2"
    assert isinstance(index.faiss_index, faiss.IndexIVFPQ)  # IVF keeps ids itself: no IDMap2


def test_flat_equals_brute_force(tmp_path):
    model = StubModel("code", DIM)
    items = code_items(300)
    index = build_index(tmp_path / "flat", model, items, batch_size=64, progress=False)
    assert index.manifest.factory == "Flat" and index.manifest.count == 300
    vectors = np.stack([hashed_vector(it.content.encode(), DIM) for it in items])  # (N, D)
    queries = np.random.default_rng(1).standard_normal((5, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    hits = index.search(queries, k=10)
    expected = exact_ids(vectors, queries, 10)
    for q in range(5):
        assert [h.id for h in hits[q]] == expected[q].tolist()
        np.testing.assert_allclose([h.score for h in hits[q]], (queries[q] @ vectors.T)[expected[q]], atol=1e-5)
        assert hits[q][0].metadata["func_name"] == f"f{expected[q][0]}"
        assert hits[q][0].metadata["path"] == items[expected[q][0]].path
    with pytest.raises(QueryShapeError, match="needs"):
        index.search(np.zeros((1, DIM + 1)), k=3)


@pytest.mark.parametrize("factory", ["HNSW32", "IVF8,Flat"])
def test_factory_string_override(tmp_path, factory):
    model = StubModel("code", DIM)
    items = code_items(400)
    index = build_index(tmp_path / "ix", model, items, factory=factory, progress=False)
    index = load_index(tmp_path / "ix", model)
    assert index.manifest.factory == factory
    vectors = np.stack([hashed_vector(it.content.encode(), DIM) for it in items])
    expected = exact_ids(vectors, vectors[:20], 10)
    got = [[h.id for h in row] for row in index.search(vectors[:20], k=10)]
    recall = np.mean([len(set(g) & set(e.tolist())) / 10 for g, e in zip(got, expected)])
    assert recall >= 0.9
    assert all(row[0] == q for q, row in enumerate(got))  # an item finds itself first


def test_filter_by_module_prefix(tmp_path):
    model = StubModel("code", DIM)
    index = build_index(tmp_path / "ix", model, code_items(200), progress=False)
    queries = np.random.default_rng(2).standard_normal((3, DIM)).astype(np.float32)
    for row in index.search(queries, k=7, filter={"module": "json"}):
        assert len(row) == 7
        assert {h.metadata["module"] for h in row} <= {"json", "json.decoder"}
    for row in index.search(queries, k=60, filter={"module": "html"}):
        assert len(row) == 50 and all(h.metadata["module"] == "html" for h in row)
    rows = index.search(queries, k=5, filter=lambda m: m["line"] <= 3)
    assert all(len(r) == 3 for r in rows)


@pytest.mark.parametrize("factory", ["Flat", "HNSW32", "IVF4,Flat"])
def test_delete_and_tombstones(tmp_path, factory):
    model = StubModel("code", DIM)
    items = code_items(100)
    index = build_index(tmp_path / "ix", model, items, factory=factory, progress=False)
    vectors = np.stack([hashed_vector(it.content.encode(), DIM) for it in items])
    removed = index.delete(["html.py"])  # 25 items: > 20 % of 100 -> HNSW rebuilds
    assert removed == 25
    index = load_index(tmp_path / "ix", model)
    assert index.manifest.count == 75 and index.faiss_index.ntotal == 75
    assert index.store.count(deleted=True) == 0
    for row in index.search(vectors, k=5):
        assert all(h.metadata["path"] != "html.py" for h in row)
    # ids are never reused; a small delete on HNSW is a tombstone, never returned
    new_ids = index.add(code_items(5, modules=("ast",)))
    assert new_ids == [100, 101, 102, 103, 104]
    assert index.delete(["ast.py"]) == 5
    index = load_index(tmp_path / "ix")
    assert index.manifest.count == 75
    if factory == "HNSW32":
        assert index.faiss_index.ntotal == 80 and index.store.count(deleted=True) == 5
    else:
        assert index.faiss_index.ntotal == 75
    for row in index.search(vectors, k=75):
        assert len(row) == 75
        assert {h.metadata["module"] for h in row} <= {"json", "json.decoder", "email.utils"}
