"""Filtered search through FAISS IDSelectors: k hits of the filter however rare, equal to brute force
over the filtered subset; SQL evaluation of dict filters agrees with the Python reference."""

import json
import sqlite3

import numpy as np
import pytest

import mmssl.index.faiss_index as fi
from mmssl.index import IndexItem, build_index
from mmssl.index.filters import matches, sql_condition
from tests.index.stub_model import StubModel, code_items, hashed_vector

DIM = 16
# 1,000 items: "json" 500, "json.decoder" 250, "email.utils" 200, "html" 40, "ast" 10
MODULES = ("json",) * 50 + ("json.decoder",) * 25 + ("email.utils",) * 20 + ("html",) * 4 + ("ast",)


@pytest.fixture(scope="module")
def corpus():
    items = code_items(1000, modules=MODULES)
    vectors = np.stack([hashed_vector(item.content.encode(), DIM) for item in items])  # (N, D)
    queries = np.random.default_rng(3).standard_normal((8, DIM)).astype(np.float32)
    return items, vectors, queries / np.linalg.norm(queries, axis=1, keepdims=True)


def brute_force(vectors, queries, k, subset):
    """ids (Q, k') of the best k among ``subset`` rows, exact."""
    scores = queries @ vectors[subset].T  # (Q, M)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return subset[order]


# IVF16,Flat probes 8 lists unfiltered; a 4 % filter probes all 16 (8 / 0.04 capped), which is exact
@pytest.mark.parametrize("factory", ["Flat", "HNSW32", "IVF16,Flat"])
def test_rare_filter_returns_k_hits_of_the_filter(tmp_path, corpus, factory):
    items, vectors, queries = corpus
    index = build_index(tmp_path / "ix", StubModel("code", DIM), items, factory=factory, progress=False)
    html = np.array([i for i, it in enumerate(items) if it.metadata["module"] == "html"])  # 4 % of the items
    expected = brute_force(vectors, queries, 10, html)
    rows = index.search(queries, k=10, filter={"module": "html"})
    for q, row in enumerate(rows):
        assert len(row) == 10 and all(h.metadata["module"] == "html" for h in row)
        assert [h.id for h in row] == expected[q].tolist()
        np.testing.assert_allclose([h.score for h in row], queries[q] @ vectors[expected[q]].T, atol=1e-5)
    ast = index.search(queries, k=10, filter={"module": "ast"})  # 10 items in all: every one comes back
    assert all(sorted(h.id for h in row) == [i for i, it in enumerate(items) if it.metadata["module"] == "ast"]
               for row in ast)
    assert index.search(queries, k=5, filter={"module": "nosuchmodule"}) == [[] for _ in queries]


def test_hnsw_graph_walk_with_selector(tmp_path, corpus, monkeypatch):
    """Subsets above FLAT_LIMIT walk the graph with the IDSelector; short rows fall back to exact."""
    monkeypatch.setattr(fi, "FLAT_LIMIT", 0)
    items, vectors, queries = corpus
    index = build_index(tmp_path / "ix", StubModel("code", DIM), items, factory="HNSW32", progress=False)
    for module, size in (("email", 200), ("html", 40), ("ast", 10)):
        subset = np.array([i for i, it in enumerate(items) if it.metadata["module"].startswith(module)])
        assert len(subset) == size
        expected = brute_force(vectors, queries, 10, subset)
        rows = index.search(queries, k=10, filter={"module": module})
        assert all(len(row) == 10 and all(h.id in set(subset.tolist()) for h in row) for row in rows)
        recall = np.mean([len({h.id for h in row} & set(e.tolist())) / 10 for row, e in zip(rows, expected)])
        assert recall >= 0.95, (module, recall)


def test_tombstones_are_excluded_by_selector(tmp_path, corpus):
    items, vectors, queries = corpus
    index = build_index(tmp_path / "ix", StubModel("code", DIM), items, factory="HNSW32", progress=False)
    assert index.delete(["ast.py"]) == 10  # 1 %: tombstones, no rebuild
    assert index.store.count(deleted=True) == 10
    live = np.array([i for i, it in enumerate(items) if it.metadata["module"] != "ast"])
    expected = brute_force(vectors, queries, 10, live)
    rows = index.search(queries, k=10)
    assert all(len(row) == 10 and all(h.metadata["module"] != "ast" for h in row) for row in rows)
    assert np.mean([len({h.id for h in r} & set(e.tolist())) / 10 for r, e in zip(rows, expected)]) >= 0.95
    assert index.search(queries, k=3, filter={"module": "ast"}) == [[] for _ in queries]


def test_callable_and_multi_key_filters(tmp_path, corpus):
    items, vectors, queries = corpus
    index = build_index(tmp_path / "ix", StubModel("code", DIM), items, progress=False)
    subset = np.array([i for i, it in enumerate(items) if it.metadata["line"] % 100 == 0])
    expected = brute_force(vectors, queries, 5, subset)
    rows = index.search(queries, k=5, filter=lambda m: m["line"] % 100 == 0)
    assert [[h.id for h in row] for row in rows] == expected.tolist()
    rows = index.search(queries, k=50, filter={"module": ["html", "ast"], "path": "html.py"})
    assert all(len(row) == 40 and {h.metadata["module"] for h in row} == {"html"} for row in rows)


def test_sql_condition_agrees_with_python(tmp_path):
    """Every dict filter SQLite evaluates selects exactly the rows ``matches`` accepts."""
    metadata = [
        {"module": "json"}, {"module": "json.decoder"}, {"module": "jsonschema"}, {"module": 3}, {},
        {"module": None}, {"folder": "cats/tabby"}, {"folder": "cats"}, {"folder": "catsup"},
        {"folder": ["cats"]}, {"line": 1}, {"line": 1.0}, {"line": "1"}, {"line": True}, {"flag": False},
        {"module": "json", "line": 2}, {"caption": "a/b"},
    ]
    items = [IndexItem(path=f"p{i}/f.py", content=str(i), metadata=m) for i, m in enumerate(metadata)]
    items.append(IndexItem(path="cats/x.png", content="x", metadata={}))
    from mmssl.index.metadata import MetadataStore

    store = MetadataStore(tmp_path / "meta.sqlite", writable=True)
    store.insert(range(len(items)), items)
    store.commit()
    filters = [
        {"module": "json"}, {"module": "json."}, {"module": "js"}, {"module": 3}, {"module": None},
        {"folder": "cats"}, {"folder": "cats/"}, {"folder": ""}, {"line": 1}, {"line": True}, {"line": "1"},
        {"flag": False}, {"module": ["json", 3]}, {"module": "json", "line": 2}, {"module": []},
        {"path": "cats"}, {"path": "p1/f.py"}, {"path": 3}, {"caption": "a"}, {"nokey": None},
    ]
    connection = sqlite3.connect(tmp_path / "meta.sqlite")
    rows = connection.execute("SELECT id, path, meta FROM items ORDER BY id").fetchall()
    for f in filters:
        assert sql_condition(f) is not None, f
        python = [r[0] for r in rows if matches(f, {"path": r[1], **json.loads(r[2])})]
        assert store.matching_ids(f).tolist() == python, f
    assert sql_condition({"folder": [["cats"]]}) is None  # non-scalar wanted values fall back to Python
    assert store.matching_ids({"folder": [["cats"]]}).tolist() == [9]
    assert sql_condition(lambda m: True) is None


def test_filter_ids_are_cached_until_the_next_write(tmp_path, corpus):
    items, vectors, queries = corpus
    index = build_index(tmp_path / "ix", StubModel("code", DIM), items, progress=False)
    first = index.search(queries[:1], k=20, filter={"module": "ast"})[0]
    assert len(first) == 10 and len(index._filter_ids) == 1
    new_ids = index.add(code_items(3, modules=("ast",)))  # a write: the cached ids are stale
    after_add = index.search(queries[:1], k=20, filter={"module": "ast"})[0]
    assert len(after_add) == 13 and set(new_ids) <= {h.id for h in after_add}
    assert index.delete(["ast.py"]) == 13
    assert index.search(queries[:1], k=20, filter={"module": "ast"}) == [[]]
