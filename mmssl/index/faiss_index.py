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


def default_search_params(factory: str) -> dict:
    """Search-time parameters stored in the manifest and applied on load."""
    if "HNSW" in factory:
        return {"efSearch": HNSW_EF_SEARCH}
    if factory.startswith("IVF"):
        nlist = int(factory[3:].split(",")[0].split("_")[0])
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


def fill(index: faiss.Index, vectors: np.ndarray, ids: np.ndarray) -> None:
    """Train (when the structure needs it) and add ``vectors`` (N, D) under ``ids`` (N,)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (N, D)
    if not index.is_trained:
        if len(vectors) == 0:
            raise ValueError("cannot train an IVF/PQ index on zero vectors; use factory 'Flat' for tiny indexes")
        index.train(vectors)
    if len(vectors):
        index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))


def stored_vectors(index: faiss.IndexIDMap2) -> tuple[np.ndarray, np.ndarray]:
    """(ids (N,), vectors (N, D)) as stored; exact for Flat and HNSW (their storage is flat)."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)  # (N,)
    vectors = index.index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
    return ids, vectors


def normalised(vectors: np.ndarray) -> np.ndarray:
    """A float32 C-contiguous copy of ``vectors`` with unit rows (zero rows stay zero)."""
    vectors = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if vectors.size:
        faiss.normalize_L2(vectors)
    return vectors
