"""An honest "nothing close" for text → image search: a per-index threshold, calibrated on held-out
queries whose concept is absent from the index, below which the best hit is called "not close".

A flat cosine cut-off fails (immich #5996): some queries score high against everything, and some items
(hubs) score high against every query. So the statistic of the best hit is its cosine corrected for both,

    closeness(q) = s₁ − a · q·μ − b · hub(x₁)

with μ (D,) the mean item vector (q·μ is the query's mean cosine over the whole index, in O(D)) and
hub(x) the item's mean cosine to the calibration queries (stored per item). ``a = b = 0`` is the flat
cut-off; :func:`calibrate` tries a small grid of (a, b) and keeps the pair that flags the most absent
calibration queries. The threshold is the highest value that keeps ``kept_goal`` (0.95) of the
present queries' R@10 (a present query whose best hit falls below it is flagged, and its success counts
as lost). Stored beside the index as ``nothing_close.npz`` with the index version it describes; a
later write to the index makes it stale (ignored until calibrated again).

    absent, present = calibration_queries(index, captions_from_other_corpora)
    closeness = calibrate(index, model.encode_text, absent, present)
    save_closeness(index, closeness)
    load_closeness(index).is_nothing_close(query_vector, hits[0].score, hits[0].id)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmssl.io import atomic_path

SIDECAR = "nothing_close.npz"
WEIGHTS = (0.0, 0.5, 1.0, 1.5)  # the grid of a (query mean) and b (hub) tried
KEPT_GOAL = 0.95
RECALL_AT = 10
BATCH = 256
STOPWORDS = frozenset("a an and at by for from in into of on or over the to under up with without".split())


@dataclass
class Closeness:
    """A calibrated threshold: the best hit is "nothing close" when ``s₁ − a·q·μ − b·hub(x₁) < threshold``."""

    threshold: float
    a: float
    b: float
    mean: np.ndarray  # (D,) mean item vector
    hub: dict[int, float]  # item id -> its mean cosine to the calibration queries
    version: dict = field(default_factory=dict)  # the index's updated_at and count it was calibrated on
    report: dict = field(default_factory=dict)  # calibration numbers

    def values(self, queries: np.ndarray, top_scores, top_ids, a: float | None = None,
               b: float | None = None) -> np.ndarray:
        """The statistic of each query's best hit: ``queries`` (Q, D) unit, ``top_scores``/``top_ids`` (Q,) -> (Q,)."""
        a = self.a if a is None else a
        b = self.b if b is None else b
        hub = np.asarray([self.hub.get(int(i), 0.0) for i in top_ids])  # (Q,)
        return np.asarray(top_scores, dtype=np.float64) - a * (np.asarray(queries) @ self.mean) - b * hub

    def describes(self, index) -> bool:
        """Whether it was calibrated on this version of ``index`` (a write since makes it stale)."""
        return self.version == {"updated_at": index.manifest.updated_at, "count": index.manifest.count}

    def is_nothing_close(self, query: np.ndarray, top_score: float, top_id: int) -> bool:
        """Whether the best hit (cosine ``top_score``, id ``top_id``) of the unit ``query`` (D,) is not close."""
        return bool(self.values(np.asarray(query)[None, :], [top_score], [top_id])[0] < self.threshold)


def _live_vectors(index) -> tuple[np.ndarray, np.ndarray]:
    from mmssl.index.faiss_index import stored_vectors

    ids, vectors = stored_vectors(index.faiss_index)  # (N,), (N, D)
    live = np.isin(ids, [row.id for row in index.store.live_rows()])
    if live.sum() < 2:
        raise ValueError(f"{index.folder} holds {int(live.sum())} items; calibrating needs at least 2")
    return ids[live], vectors[live].astype(np.float32)


def item_hubness(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Each item's mean cosine to ``queries``: (N, D), (Q, D) -> (N,), in batches of items."""
    return np.concatenate([(queries @ vectors[i:i + BATCH].T).mean(axis=0) for i in range(0, len(vectors), BATCH)])


def choose_threshold(present: np.ndarray, present_found: np.ndarray, kept_goal: float = KEPT_GOAL) -> float:
    """The highest threshold (flag: value < threshold) keeping ``kept_goal`` of the present queries that found
    their item (``present_found`` (P,) bool)."""
    found = np.sort(np.asarray(present, dtype=np.float64)[np.asarray(present_found, dtype=bool)])
    if not len(found):
        raise ValueError("no present query found its item in the top 10; the index or the queries are wrong")
    may_lose = int(np.floor((1 - kept_goal) * len(found) + 1e-9))  # successes we may flag
    return float(found[may_lose])  # every found value >= this one is kept


def shares(threshold: float, absent_values, present_values, present_found) -> dict:
    """``absent_flagged`` and ``present_kept`` (share of the present queries' R@10 kept) at ``threshold``."""
    found = np.asarray(present_found, dtype=bool)
    kept = (np.asarray(present_values) >= threshold) & found
    return {"absent_flagged": float(np.mean(np.asarray(absent_values) < threshold)),
            "present_kept": float(kept.sum() / max(1, found.sum())), "present_recall": float(found.mean())}


@dataclass
class Measured:
    """Queries run against an index: unit vectors (Q, D), best hits' cosines and ids (Q,), relevant found (Q,)."""

    queries: np.ndarray
    top_scores: np.ndarray
    top_ids: np.ndarray
    found: np.ndarray


def measure(index, encode_text, texts: list[str], relevant: list[set[int]] | None = None) -> Measured:
    queries = np.asarray(encode_text(texts), dtype=np.float32)  # (Q, D)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    hits = index.search(queries, k=RECALL_AT)
    return Measured(queries, np.asarray([h[0].score if h else -1.0 for h in hits]),
                    np.asarray([h[0].id if h else -1 for h in hits]),
                    np.asarray([bool(relevant and relevant[i] & {x.id for x in h}) for i, h in enumerate(hits)]))


def evaluate(closeness: Closeness, absent: Measured, present: Measured, a: float | None = None,
             b: float | None = None, threshold: float | None = None) -> dict:
    """Shares at ``closeness``'s (or the given) weights and threshold; a threshold not given is chosen here."""
    absent_values = closeness.values(absent.queries, absent.top_scores, absent.top_ids, a, b)
    present_values = closeness.values(present.queries, present.top_scores, present.top_ids, a, b)
    if threshold is None:
        threshold = choose_threshold(present_values, present.found, closeness.report.get("kept_goal", KEPT_GOAL))
    return {"threshold": threshold, **shares(threshold, absent_values, present_values, present.found)}


def calibrate(index, encode_text, absent_texts: list[str], present: dict[str, set[int]],
              kept_goal: float = KEPT_GOAL) -> Closeness:
    """Calibrate on ``absent_texts`` (concepts not in the index) and ``present`` (query -> its relevant ids)."""
    if not absent_texts or not present:
        raise ValueError("calibrating needs absent and present queries; see calibration_queries")
    ids, vectors = _live_vectors(index)
    absent_run = measure(index, encode_text, absent_texts)
    present_run = measure(index, encode_text, list(present), list(present.values()))
    hub = item_hubness(vectors, np.concatenate([absent_run.queries, present_run.queries]))  # (N,)
    closeness = Closeness(0.0, 0.0, 0.0, vectors.astype(np.float64).mean(axis=0),
                          {int(i): float(h) for i, h in zip(ids, hub)},
                          {"updated_at": index.manifest.updated_at, "count": index.manifest.count},
                          {"kept_goal": kept_goal, "absent": len(absent_texts), "present": len(present)})
    grid = {(a, b): evaluate(closeness, absent_run, present_run, a, b) for a in WEIGHTS for b in WEIGHTS}
    (a, b), best = max(grid.items(), key=lambda item: (item[1]["absent_flagged"], -item[0][0] - item[0][1]))
    closeness.threshold, closeness.a, closeness.b = best["threshold"], a, b
    closeness.report.update(chosen=best, flat_cosine=grid[(0.0, 0.0)])
    return closeness


SAMPLE_ITEMS = 1024  # the fixed sample of items a query's typical similarity is read from
TOP_DEPTH = 100  # the query's own top-k the top-1 is compared with


def query_statistics(index, queries: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Per-query statistics of the best hit that other products use to say "nothing close" (each (Q,), higher =
    closer), for ``queries`` (Q, D) unit rows; measured side by side by ``bench/features.py``:

    * ``top1``: the best cosine (the flat cut-off);
    * ``top1_minus_typical``: the best cosine minus the query's mean cosine to a fixed sample of the index;
    * ``top1_z_typical``: the same, divided by the sample's standard deviation (a z-score);
    * ``top1_z_topk``: the z-score of the best cosine within the query's own top ``TOP_DEPTH``;
    * ``margin_top10``: the best cosine minus the 10th.
    """
    ids, vectors = _live_vectors(index)
    rows = np.random.default_rng(seed).choice(len(ids), size=min(SAMPLE_ITEMS, len(ids)), replace=False)
    typical = queries @ vectors[rows].T  # (Q, S)
    depth = min(TOP_DEPTH, len(ids))
    top = np.asarray([[h.score for h in hits] for hits in index.search(queries, k=depth)])  # (Q, depth)
    best = top[:, 0]
    return {"top1": best, "top1_minus_typical": best - typical.mean(axis=1),
            "top1_z_typical": (best - typical.mean(axis=1)) / (typical.std(axis=1) + 1e-9),
            "top1_z_topk": (best - top.mean(axis=1)) / (top.std(axis=1) + 1e-9),
            "margin_top10": best - top[:, min(9, depth - 1)]}


def words(text: str) -> set[str]:
    """Content words of a caption, lower case, a plural ``s`` dropped ("red cars" -> {"red", "car"})."""
    found = set()
    for word in re.findall(r"[^\W\d_]+", text.lower()):
        if len(word) > 2 and word not in STOPWORDS:
            found.add(word[:-1] if word.endswith("s") and len(word) > 3 else word)
    return found


def calibration_queries(index, candidate_texts) -> tuple[list[str], dict[str, set[int]]]:
    """``(absent, present)`` for ``index``: present = each distinct item caption, relevant = the items it
    names; absent = the ``candidate_texts`` sharing no content word with any caption of the index (so their
    concept is not in it, by any of its names)."""
    present: dict[str, set[int]] = {}
    vocabulary: set[str] = set()
    for row in index.store.live_rows():
        caption = str(row.metadata.get("caption") or "").strip()
        if caption:
            present.setdefault(caption, set()).add(row.id)
        for text in row.metadata.get("captions") or [caption]:
            vocabulary |= words(str(text))
    absent = sorted({t.strip() for t in candidate_texts if t.strip() and words(t) and not words(t) & vocabulary})
    return absent, present


ABSENT_CORPORA = ("emoji", "clipart", "stamps", "game-icons")
ABSENT_SPLITS = ("train", "valid")


def corpus_captions(names=ABSENT_CORPORA, splits=ABSENT_SPLITS) -> list[str]:
    """The captions (``text``) of built image corpora: the pool :func:`calibration_queries` draws absent queries
    from. A corpus or split that is not built is skipped; none built at all is an error."""
    from mmssl.data.corpus import load_corpus

    texts, read = [], 0
    for name in names:
        for split in splits:
            try:
                dataset = load_corpus(name, split)
            except FileNotFoundError:  # CorpusNotBuiltError: not built here
                continue
            read += 1
            texts += [str(t) for t in dataset["text"]] if len(dataset) else []
    if not read:
        raise FileNotFoundError(f"none of the corpora {', '.join(names)} is built; `make data` (or python -m mmssl "
                                "data build emoji clipart) builds them")
    return texts


def calibrate_index(index, encode_text, candidate_texts=None, kept_goal: float = KEPT_GOAL) -> Closeness:
    """Calibrate ``index`` on absent queries drawn from ``candidate_texts`` (default: :func:`corpus_captions`)
    and its own captions, and store the result beside it."""
    absent, present = calibration_queries(index, corpus_captions() if candidate_texts is None else candidate_texts)
    if not present:
        raise ValueError(f"{index.folder} has no captions to calibrate on (a folder without captions.csv names "
                         "its items by file only); its searches say nothing about closeness")
    closeness = calibrate(index, encode_text, absent, present, kept_goal)
    save_closeness(index, closeness)
    return closeness


def sidecar_path(index) -> Path:
    return Path(index.folder) / SIDECAR


def save_closeness(index, closeness: Closeness) -> Path:
    """Write ``nothing_close.npz`` beside the index (atomically)."""
    path = sidecar_path(index)
    meta = {"threshold": closeness.threshold, "a": closeness.a, "b": closeness.b, "version": closeness.version,
            "report": closeness.report}
    hub_ids = np.asarray(list(closeness.hub), dtype=np.int64)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, mean=closeness.mean, hub_ids=hub_ids,
                 hub=np.asarray([closeness.hub[int(i)] for i in hub_ids]), meta=np.asarray(json.dumps(meta)))
    return path


def load_closeness(index) -> Closeness | None:
    """The index's calibrated threshold; None when it was never calibrated or was written since."""
    path = sidecar_path(index)
    if not path.is_file():
        return None
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        hub = {int(i): float(h) for i, h in zip(data["hub_ids"], data["hub"])}
        closeness = Closeness(float(meta["threshold"]), float(meta["a"]), float(meta["b"]), data["mean"], hub,
                              meta["version"], meta["report"])
    return closeness if closeness.describes(index) else None
