"""Evaluate a built index on the user's own queries: every query ranked over every item of the index.

    results = evaluate_index_queries(load_index("indexes/my-code"), model, read_user_queries("q.tsv")[0])
    print(format_user_table(results))

Systems (each a row of MRR and Recall@1/5/10, :mod:`mmssl.eval.user_queries`):

* the index's model, dense: the query's cosine to every stored vector (what ``search --mode dense`` ranks by);
* code indexes: BM25 over the items' texts (:mod:`mmssl.index.hybrid`), the model fused with BM25 at the
  search default weight (min-max over the whole index), and MiniLM zero-shot (all-MiniLM-L6-v2 on
  query and index text, the code models' starting point; embeddings cached);
* image indexes: BM25 over the captions (file names when there is no ``captions.csv``). There is no
  zero-shot image–text baseline offline: the project ships no pretrained CLIP. Pass one you have as
  ``baseline_model`` (e.g. ``open_clip:ViT-B-32:/path/weights.safetensors``); it re-embeds the items;
* both: a uniformly random ranking's exact expected metrics.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from mmssl.index import faiss_index

NO_IMAGE_BASELINE_NOTE = "no zero-shot image-text baseline offline (no pretrained CLIP ships); pass --baseline-model"


def _live_items(index) -> tuple[np.ndarray, list[dict], np.ndarray]:
    """(ids (N,), metadata with ``path`` per item, stored unit vectors (N, D)) of every live item, by id."""
    rows = index.store.live_rows()
    if not rows:
        raise ValueError(f"{index.folder} holds no items; build it first")
    ids = np.asarray([row.id for row in rows], dtype=np.int64)
    stored_ids, vectors = _stored_vectors(index.faiss_index)
    position = {int(i): j for j, i in enumerate(stored_ids)}
    vectors = vectors[[position[int(i)] for i in ids]]  # (N, D), row order = ids
    return ids, [{"path": row.path, **row.metadata} for row in rows], vectors


def _stored_vectors(index) -> tuple[np.ndarray, np.ndarray]:
    """Flat/HNSW: the stored vectors; IVF: the decoded codes (what its search scores against)."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.make_direct_map()
    return faiss_index.stored_vectors(index)


def _base_folder(index, items: Sequence[dict]) -> str | None:
    folder = index.manifest.source.get("folder")
    if folder:
        return os.path.normpath(folder)
    paths = [item["path"] for item in items if os.path.isabs(item["path"])]
    return os.path.commonpath(paths) if paths else None


def _item_texts(items: Sequence[dict]) -> list[str]:
    """What a code item's model embedded, rebuilt from its metadata (the ``full`` index text)."""
    from mmssl.data.code_text import index_text

    return [index_text({**item, "code": item.get("original_string", "")}, "full") for item in items]


def _lexical_scores(index, query_texts: list[str], ids: np.ndarray) -> np.ndarray:
    from mmssl.index.hybrid import lexical_index

    lexical = lexical_index(index)
    column = {int(i): j for j, i in enumerate(lexical.ids)}
    return lexical.scores(query_texts)[:, [column[int(i)] for i in ids]]  # (Q, N), columns = ids


def _other_model_scores(path: str, kind: str, query_texts: list[str], items: Sequence[dict]) -> np.ndarray:
    """A baseline model's (Q, N) cosines; it embeds the items itself."""
    from mmssl.model import load_model

    model = load_model(path)
    queries = np.asarray(model.encode_text(query_texts), dtype=np.float32)  # (Q, E)
    if kind == "code":
        documents = np.asarray(model.encode_code(_item_texts(items)), dtype=np.float32)  # (N, E)
    else:
        documents = np.asarray(model.encode_image([item["path"] for item in items]), dtype=np.float32)  # (N, E)
    return queries @ documents.T


def evaluate_index_queries(index, model, queries, *, baselines: bool = True, baseline_model: str | None = None,
                           cache_root: str | Path | None = None, index_name: str | None = None) -> dict:
    """MRR and Recall@K of ``model`` on ``index`` for the user's ``queries``, beside the baselines.

    Args:
        index: a loaded :class:`~mmssl.index.Index` (any structure; IVF scores its decoded codes).
        model: the model that built it (its text side encodes the queries).
        queries: :class:`~mmssl.eval.user_queries.UserQuery` list (:func:`~mmssl.eval.user_queries.read_user_queries`).
        baselines: add BM25, random and (code) MiniLM zero-shot.
        baseline_model: another model path or spec to rank the same items with (it embeds them).
        cache_root: MiniLM's feature cache (default ``<data root>/cache/features``).

    Returns:
        ``{"index", "kind", "num_queries", "num_items", "ks", "rows": [...], "notes": [...], "queries": [...]}``;
        each row has ``system``, ``mrr``, ``recall@K``, ``ranks`` (per query, or None) and ``note``.

    Raises:
        ExpectedItemError: an expected item is not in the index (all are listed).
    """
    from mmssl.eval.fusion import fuse_scores
    from mmssl.eval.user_queries import KS, code_reference, random_row, relevance_matrix, system_row
    from mmssl.index.hybrid import DEFAULT_LEXICAL_WEIGHT

    start = time.perf_counter()
    name = index_name or index.folder.name
    kind = "code" if index.manifest.kind == "code" else "image"
    ids, items, vectors = _live_items(index)
    relevance = relevance_matrix(queries, items, kind, _base_folder(index, items), name)  # (Q, N)
    texts = [q.text for q in queries]
    query_vectors = faiss_index.normalised(np.asarray(model.encode_text(texts), dtype=np.float32))  # (Q, D)
    dense = query_vectors @ vectors.T  # (Q, N) cosines
    model_name = f"model ({Path(str(index.manifest.model_path)).name})"
    rows = [system_row(model_name, dense, relevance, note="dense")]
    notes = []
    if baselines:
        lexical = _lexical_scores(index, texts, ids)  # (Q, N)
        what = "index texts" if kind == "code" else "captions"
        if kind == "code":
            fused = fuse_scores(dense, lexical, DEFAULT_LEXICAL_WEIGHT, "minmax")
            rows.append(system_row(f"{model_name} + BM25", fused, relevance,
                                   note=f"hybrid, lexical weight {DEFAULT_LEXICAL_WEIGHT}"))
        rows.append(system_row("BM25", lexical, relevance, note=f"over the {what}"))
        if kind == "code":
            from mmssl.eval.queries import minilm_system

            minilm = minilm_system(cache_root).scores(texts, _item_texts(items))
            rows.append(system_row("MiniLM zero-shot", minilm, relevance, note="all-MiniLM-L6-v2, full index text"))
        else:
            notes.append(NO_IMAGE_BASELINE_NOTE)
        rows.append(random_row(relevance))
    if baseline_model:
        scores = _other_model_scores(baseline_model, kind, texts, items)
        rows.append(system_row(f"baseline ({Path(baseline_model.split(':')[-1]).name})", scores, relevance,
                               note="re-embeds the items"))
    def reference(item: dict) -> str:
        return code_reference(item) if kind == "code" else item["path"]

    per_query = [{"query": q.text, "expected": q.expected, "line": q.line, "num_relevant": int(relevance[i].sum()),
                  "top_hit": reference(items[int(np.argmax(dense[i]))])} for i, q in enumerate(queries)]
    return {"index": name, "kind": kind, "num_queries": len(queries), "num_items": len(items), "ks": list(KS),
            "model": str(index.manifest.model_path), "rows": rows, "notes": notes, "queries": per_query,
            "seconds": round(time.perf_counter() - start, 2)}
