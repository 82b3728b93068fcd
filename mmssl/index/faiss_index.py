"""The FAISS side of an index: which structure for how many vectors, and building one.

Every index is searched by inner product on L2-normalised vectors (cosine) and holds our ids (the
metadata row ids), stable across adds and deletes: Flat and HNSW are wrapped in ``IndexIDMap2``; IVF
stores ids itself and is *not* wrapped, because ``IndexIDMap`` over IVF breaks after the first
``remove_ids`` (IDMap assumes the inner index renumbers positions on removal; IVF does not).

| vectors          | factory                        | why                                        |
|------------------|--------------------------------|--------------------------------------------|
| < 50k            | ``Flat``                       | exact, and brute force is fast enough       |
| < 2M             | ``HNSW32`` (efConstruction 80) | sub-ms queries, no training                 |
| beyond           | ``IVF{4 sqrt n},PQ{dim/8}``    | memory: 8 bytes per 64 dims                 |

Filtered search (:func:`search`) hands FAISS an ``IDSelector`` of the allowed ids:

* Flat scans exactly the selected vectors.
* HNSW: a graph walk through a rare subset can stall before finding ``k`` of it, so subsets under
  ``FLAT_LIMIT`` items are searched exactly over their stored vectors (what a Flat index of that
  size would do); larger ones walk the graph with the selector and efSearch widened by the
  inverse fraction of items kept (up to ``HNSW_FILTERED_EF_CAP``).
* IVF probes its usual lists times the inverse fraction kept (a 1 % filter probes 100x the lists,
  all of them at most), so a filtered query scores as many candidates as an unfiltered one.

A query that still comes back with fewer than ``k`` hits while more exist is searched again
exhaustively (exact vectors, or every IVF list).

FAISS cannot remove ids from an HNSW graph: deletes there are tombstones in the metadata, filtered
at search time, and the index is rebuilt from its own vectors once tombstones pass 20 %
(see :mod:`mmssl.index.index`). Flat and IVF remove ids for real.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

FLAT_LIMIT = 50_000
HNSW_LIMIT = 2_000_000
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64
IVF_NPROBE_FRACTION = 16  # nprobe = nlist / 16 (at least 8 lists): trades ~recall 0.9+ at 10 for speed
IVF_MIN_NPROBE = 8
TOMBSTONE_REBUILD_FRACTION = 0.2
HNSW_FILTERED_EF_CAP = 1024  # a filtered graph walk widens efSearch by 1 / (fraction kept), up to this
TRAIN_PER_LIST = 64  # IVF k-means: FAISS warns below 39 points per centroid; 64..256 is its advice
PQ_MIN_TRAIN = 10_000  # PQ codebooks have 256 centroids each: 39 * 256 points at least
IDMAP_PREFIXES = ("IDMap2,", "IDMap,")


def choose_factory(count: int, dim: int) -> str:
    """The FAISS factory string for ``count`` vectors of width ``dim`` (see the module table)."""
    if count < FLAT_LIMIT:
        return "Flat"
    if count < HNSW_LIMIT:
        return "HNSW32"
    nlist = int(4 * math.sqrt(count))
    if dim % 8 == 0:
        return f"IVF{nlist},PQ{dim // 8}"
    return f"IVF{nlist},Flat"


def normalise_factory(factory: str) -> str:
    """A user's factory string without an ``IDMap`` prefix (we always add ``IDMap2`` ourselves)."""
    factory = factory.strip()
    for prefix in IDMAP_PREFIXES:
        if factory.startswith(prefix):
            factory = factory[len(prefix):]
    if not factory:
        raise ValueError("empty FAISS factory string; use e.g. 'Flat', 'HNSW32' or 'IVF1024,PQ16'")
    return factory


def supports_remove(factory: str) -> bool:
    """Whether FAISS can remove ids from this structure (HNSW cannot)."""
    return "HNSW" not in factory


def ivf_lists(factory: str) -> int:
    """``"IVF1024,PQ16"`` -> 1024."""
    return int(factory[3:].split(",")[0].split("_")[0])


def default_search_params(factory: str) -> dict:
    """Search-time parameters stored in the manifest and applied on load."""
    if "HNSW" in factory:
        return {"efSearch": HNSW_EF_SEARCH}
    if factory.startswith("IVF"):
        nlist = ivf_lists(factory)
        return {"nprobe": min(nlist, max(IVF_MIN_NPROBE, nlist // IVF_NPROBE_FRACTION))}
    return {}


def apply_search_params(index: faiss.Index, params: dict) -> None:
    space = faiss.ParameterSpace()
    for name, value in params.items():
        space.set_index_parameter(index, name, value)


def new_index(factory: str, dim: int) -> faiss.Index:
    """An empty index under inner product that takes our ids (``IDMap2,<factory>``, or IVF as it is).

    Raises:
        ValueError: FAISS does not understand ``factory`` (the message shows valid examples).
    """
    spec = factory if factory.startswith("IVF") else f"IDMap2,{factory}"
    try:
        index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        raise ValueError(f"FAISS cannot build factory {factory!r} for dim {dim}: {str(e).splitlines()[0][:200]}; "
                         "use e.g. 'Flat', 'HNSW32', 'IVF256,Flat' or 'IVF256,PQ8' (PQ m must divide dim)") from e
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    apply_search_params(index, default_search_params(factory))
    return index


def training_sample_size(factory: str, count: int) -> int:
    """How many of ``count`` vectors train ``factory``: ``TRAIN_PER_LIST`` per IVF list, at least
    ``PQ_MIN_TRAIN`` (PQ codebooks), at most all of them; 0 for structures that need no training."""
    if not factory.startswith("IVF"):
        return 0
    return min(count, max(TRAIN_PER_LIST * ivf_lists(factory), PQ_MIN_TRAIN))


def train(index: faiss.Index, sample: np.ndarray) -> None:
    """Train ``index`` on ``sample`` (S, D) if its structure needs training (IVF, PQ)."""
    if index.is_trained:
        return
    if len(sample) == 0:
        raise ValueError("cannot train an IVF/PQ index on zero vectors; use factory 'Flat' for tiny indexes")
    index.train(np.ascontiguousarray(sample, dtype=np.float32))


def fill(index: faiss.Index, vectors: np.ndarray, ids: np.ndarray) -> None:
    """Train (when the structure needs it) and add ``vectors`` (N, D) under ``ids`` (N,)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (N, D)
    if not index.is_trained:
        train(index, vectors)
    if len(vectors):
        index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))


def stored_vectors(index: faiss.IndexIDMap2) -> tuple[np.ndarray, np.ndarray]:
    """(ids (N,), vectors (N, D)) as stored; exact for Flat and HNSW (their storage is flat)."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)  # (N,)
    vectors = index.index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
    return ids, vectors


def _inner(index: faiss.Index) -> faiss.Index:
    return faiss.downcast_index(index.index if isinstance(index, faiss.IndexIDMap2) else index)


def _exact_subset(index: faiss.Index, queries: np.ndarray, k: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brute force over the stored vectors of ``ids`` (M,): (Q, k) scores and ids, -1 padded."""
    vectors = index.reconstruct_batch(ids)  # (M, D)
    scores, positions = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)  # (Q, k) each
    return scores, np.where(positions >= 0, ids[np.maximum(positions, 0)], -1)


def search(index: faiss.Index, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None,
           excluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` ids among ``allowed`` (or among all but ``excluded``) for each query (see the module docstring).

    Args:
        index: one of ours (``IDMap2`` over Flat/HNSW, or IVF).
        queries: (Q, D) float32, L2-normalised.
        allowed: sorted ids (M,) the results must come from; None for every id.
        excluded: ids (T,) that must not come back (HNSW tombstones); ignored when ``allowed`` is given.

    Returns:
        scores (Q, k) and ids (Q, k), best first; id -1 (and score -inf) pads rows with fewer hits.
    """
    if allowed is None and (excluded is None or len(excluded) == 0):
        return index.search(queries, k)
    if allowed is not None:
        selector, available = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64)), len(allowed)
    else:
        selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(np.ascontiguousarray(excluded, dtype=np.int64)))
        available = index.ntotal - len(excluded)
    if available <= 0:
        return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
    inner = _inner(index)
    ivf = faiss.try_extract_index_ivf(inner)
    exact_storage = isinstance(inner, (faiss.IndexFlat, faiss.IndexHNSW))
    if isinstance(inner, faiss.IndexHNSW) and allowed is not None and available < FLAT_LIMIT:
        return _exact_subset(index, queries, k, allowed)
    if isinstance(inner, faiss.IndexHNSW):
        # the walk keeps efSearch candidates of which only a fraction pass: widen it by the inverse fraction
        ef = max(inner.hnsw.efSearch, k)
        ef = max(ef, min(HNSW_FILTERED_EF_CAP, math.ceil(ef * index.ntotal / available)))
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
    elif ivf is not None:
        # a filter keeping 1/f of the items: probe f times the lists, so as many members are scored as an
        # unfiltered search scores items (only members are scored; the rest cost a membership test)
        nprobe = min(ivf.nlist, math.ceil(ivf.nprobe * index.ntotal / available))
        params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
    else:
        params = faiss.SearchParameters(sel=selector)
    scores, ids = index.search(queries, k, params=params)  # (Q, k) each
    short = np.flatnonzero((ids >= 0).sum(axis=1) < min(k, available))
    if len(short):  # the walk or the probed lists ran out before k selected items: search those exhaustively
        if exact_storage:
            if allowed is None:
                stored = faiss.vector_to_array(index.id_map).astype(np.int64)  # (N,)
                allowed = stored[~np.isin(stored, excluded)]
            scores[short], ids[short] = _exact_subset(index, queries[short], k, allowed)
        elif ivf is not None:
            wide = faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nlist)
            scores[short], ids[short] = index.search(queries[short], k, params=wide)
    return scores, ids


def normalised(vectors: np.ndarray) -> np.ndarray:
    """A float32 C-contiguous copy of ``vectors`` with unit rows (zero rows stay zero)."""
    vectors = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if vectors.size:
        faiss.normalize_L2(vectors)
    return vectors
