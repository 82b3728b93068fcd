"""Hybrid search over a built index: dense (FAISS) and BM25 over the index's own texts, fused.

    hits = search_texts(index, model, ["parse a query string into a dict"], k=10)            # hybrid
    hits = search_texts(index, model, queries, k=10, mode="dense")                            # FAISS only

The lexical side is a :class:`~mmssl.eval.bm25.BM25Index` over every live item's text, rebuilt
from the index metadata (code: module, qualified name, signature, docstring and source; images:
captions) the first time an index is searched lexically, and kept in memory per index version
(folder + ``updated_at`` + count), so a write invalidates it and a repeated search reuses it.

Hybrid ranking takes each side's top ``candidates`` (dense from FAISS, lexical from BM25 over all
items), fuses the union with :func:`mmssl.eval.fusion.fuse_scores`, and returns the best ``k``. A
lexical-only candidate missing from the dense list gets the dense list's lowest score (its true
cosine is at most that), so with ``lexical_weight = 0`` the hits are exactly the dense ones.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmssl.data.code_text import text_words
from mmssl.eval.fusion import fuse_scores

SEARCH_MODES = ("hybrid", "dense", "lexical")
# The weight bench/code_search.py chose for models/code-default on the dev split of the dev set (full index
# text, min-max fusion); `mmssl search` on a code index defaults to it.
DEFAULT_LEXICAL_WEIGHT = 0.3
DEFAULT_CANDIDATES = 100
LEXICAL_CACHE_SIZE = 8


def item_search_text(metadata: dict) -> str:
    """What BM25 reads for one indexed item: code's module, name, signature, docstring and source,
    or an image's captions."""
    if "func_name" in metadata:
        fields = ("module", "func_name", "signature", "docstring", "original_string")
        return "\n".join(str(metadata.get(f) or "") for f in fields)
    captions = metadata.get("captions") or [metadata.get("caption", "")]
    return " ".join(str(c) for c in captions)


@dataclass
class LexicalIndex:
    """BM25 over an index's live items: row ``i`` of the BM25 matrix is FAISS id ``ids[i]``."""

    ids: np.ndarray  # (N,) int64
    bm25: object  # mmssl.eval.bm25.BM25Index

    @classmethod
    def from_index(cls, index) -> LexicalIndex:
        from mmssl.eval.bm25 import BM25Index, lexical_terms

        rows = index.store.live_rows()
        if not rows:
            raise ValueError(f"{index.folder} holds no items to search")
        documents = [lexical_terms(text_words(item_search_text(row.metadata))) for row in rows]
        return cls(np.asarray([row.id for row in rows], dtype=np.int64), BM25Index(documents))

    def scores(self, query_texts: list[str]) -> np.ndarray:
        """(Q, N) BM25 scores, column ``i`` for id ``ids[i]``."""
        from mmssl.eval.bm25 import lexical_terms

        return self.bm25.score([lexical_terms(text_words(q)) for q in query_texts])


_lexical_cache: OrderedDict[tuple, LexicalIndex] = OrderedDict()


def lexical_index(index) -> LexicalIndex:
    """The index's :class:`LexicalIndex`, built once per index version."""
    key = (str(index.folder), index.manifest.updated_at, index.manifest.count)
    found = _lexical_cache.get(key)
    if found is None:
        found = _lexical_cache[key] = LexicalIndex.from_index(index)
        if len(_lexical_cache) > LEXICAL_CACHE_SIZE:
            _lexical_cache.popitem(last=False)
    _lexical_cache.move_to_end(key)
    return found


def _lexical_scores(index, query_texts: list[str], filter) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, scores)``: every live id (N,) and each query's BM25 score of it (Q, N); -inf outside ``filter``."""
    lexical = lexical_index(index)
    scores = lexical.scores(query_texts)  # (Q, N)
    if filter is not None:
        allowed = np.isin(lexical.ids, index.store.matching_ids(filter))  # (N,)
        scores = np.where(allowed[None, :], scores, -np.inf)
    return lexical.ids, scores


def _top(ids: np.ndarray, scores: np.ndarray, count: int) -> list[list[tuple[int, float]]]:
    """Each row's best ``count`` (id, score), best first, skipping -inf (filtered out)."""
    count = min(count, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :count]  # (Q, count)
    return [[(int(ids[j]), float(row[j])) for j in order if np.isfinite(row[j])] for row, order in zip(scores, top)]


def _lexical_top(index, query_texts: list[str], count: int, filter) -> list[list[tuple[int, float]]]:
    """Each query's best ``count`` (id, BM25 score), best first, optionally within ``filter``."""
    return _top(*_lexical_scores(index, query_texts, filter), count)


def _hits(index, ranked: list[list[tuple]]):
    """Hits of ranked ``(id, score)`` or ``(id, score, dense, lexical)`` tuples."""
    from mmssl.index.index import Hit

    rows = index.store.rows(sorted({entry[0] for query in ranked for entry in query}))
    return [[Hit(entry[0], entry[1], {"path": rows[entry[0]].path, **rows[entry[0]].metadata}, *entry[2:])
             for entry in query if entry[0] in rows] for query in ranked]


def hybrid_search(index, query_texts: list[str], query_vectors: np.ndarray | None, k: int = 10, *,
                  mode: str = "hybrid", lexical_weight: float = DEFAULT_LEXICAL_WEIGHT, fusion: str = "minmax",
                  candidates: int = DEFAULT_CANDIDATES, filter=None):
    """Best ``k`` hits per query: ``mode`` "dense" (FAISS), "lexical" (BM25) or "hybrid" (fused).

    Returns:
        Q lists of :class:`~mmssl.index.index.Hit`; a hybrid hit's score is the fused score.
    """
    if mode not in SEARCH_MODES:
        raise ValueError(f"unknown search mode {mode!r}; choose one of {', '.join(SEARCH_MODES)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if mode == "dense":
        found = index.search(query_vectors, k=k, filter=filter)
        for hit in (h for query in found for h in query):
            hit.dense = hit.score  # shown per hit, as the fused modes show theirs
        return found
    if mode == "lexical":
        return _hits(index, [[(i, score, None, score) for i, score in query]
                             for query in _lexical_top(index, query_texts, k, filter)])
    pool = max(k, candidates)
    dense = index.search(query_vectors, k=pool, filter=filter)
    ids, scores = _lexical_scores(index, query_texts, filter)  # (N,), (Q, N)
    column = {int(i): j for j, i in enumerate(ids)}
    ranked = []
    for dense_hits, lexical_hits, bm25 in zip(dense, _top(ids, scores, pool), scores):
        dense_scores = {h.id: h.score for h in dense_hits}
        lexical_scores = dict(lexical_hits)
        union = [h.id for h in dense_hits] + [i for i, _ in lexical_hits if i not in dense_scores]  # dense first
        if not union:
            ranked.append([])
            continue
        floor = min(dense_scores.values()) if dense_scores else 0.0
        lexical_floor = min(lexical_scores.values()) if lexical_scores else 0.0
        fused = fuse_scores(np.asarray([[dense_scores.get(i, floor) for i in union]]),
                            np.asarray([[lexical_scores.get(i, lexical_floor) for i in union]]),
                            lexical_weight, fusion)[0]  # (U,)
        order = np.argsort(-fused, kind="stable")[:k]  # stable: ties keep the dense order
        # shown per hit: its cosine when it was a dense candidate, and its own BM25 score (not the floor)
        ranked.append([(union[j], float(fused[j]), dense_scores.get(union[j]), float(bm25[column[union[j]]]))
                       for j in order])
    return _hits(index, ranked)


def read_query_file(path: str | Path) -> list[str]:
    """Queries from a file: one a line, or JSONL objects with a ``text`` field (blank lines skipped).

    Raises:
        ValueError: the file holds no query, or a JSON line has no ``text``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no query file {path}; pass a file with one query a line (or JSONL with 'text')")
    texts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                text = json.loads(line).get("text")
            except json.JSONDecodeError:
                text = line
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{path}:{number}: a JSON query needs a non-empty 'text' field")
            line = text.strip()
        texts.append(line)
    if not texts:
        raise ValueError(f"{path} holds no queries; write one query a line")
    return texts


def search_texts(index, model, query_texts: list[str], k: int = 10, **options):
    """Encode ``query_texts`` once (batched) and search ``index`` (see :func:`hybrid_search`)."""
    mode = options.get("mode", "hybrid")
    vectors = model.encode_text(query_texts) if mode != "lexical" else None
    return hybrid_search(index, query_texts, vectors, k, **options)
