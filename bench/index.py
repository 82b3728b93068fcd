"""Benchmark: build time, memory, latency, throughput and recall@10 of faiss indexes vs exact search.

Indexes (inner product on L2-normalised float32 vectors, dim 256):
  * ``flat``  -- ``IndexFlatIP``, exact; checked against the memory-bandwidth bound
    (n * d * 4 bytes scanned per query / measured copy bandwidth; goal: p50 <= 1.5x the bound).
  * ``hnsw``  -- ``HNSW32`` with efConstruction 80; efSearch is swept over 16..512 and the smallest
    value reaching recall@10 >= 0.95 is reported (goal at 1M: p50 <= 1 ms at that recall).
  * ``ivfpq`` -- ``IVF{4*sqrt(n)},PQ{d/8},RFlat``: residual PQ with d/8 bytes/vector, re-ranked
    exactly from the stored vectors (``k_factor`` x 10 candidates);
  * ``ivfpqfs`` -- ``IVF{4*sqrt(n)},PQ{d/4}x4fs,RFlat``: the same bytes as 4-bit fast-scan codes
    (SIMD lookup tables in registers; much faster to train and scan), re-ranked the same way.
    For both, (nprobe, k_factor) is swept (k_factor 16 then 64 at each nprobe) and the first pair
    reaching recall@10 >= 0.95 is reported, with the recall before re-ranking alongside. Exact
    re-ranking keeps the float vectors, so these save search time, not memory.

Data, from a fixed seed and generated in chunks: ``uniform`` -- Gaussian vectors normalised onto
the sphere, the hardest case for approximate search (no structure to exploit); ``clustered`` --
vectors scattered around 1,000 random unit centres (cosine ~0.8 to their centre), closer to real
embeddings; ``minilm`` -- real embeddings: the MiniLM features of the corpora's texts (code
docstrings and image captions) from the feature cache ``data/cache/features/*/vectors.npy``
(384-d, deduplicated), 1,000 of them held out as queries (sizes above the cache are skipped; the
largest available size is always run). Queries are 1,000 held-out vectors from the same
distribution; ground truth is exact brute force (``faiss.knn``).

Flat against the memory-bandwidth bound: a Flat query scans n * d * 4 bytes. The bound is that
many bytes divided by a bandwidth measured right before, with numpy, on as many threads as the
search uses: a single query runs on one core (faiss parallelises over queries), a batch on all
faiss threads. Two bandwidths are reported: ``copy`` (bytes copied per second by ``np.copyto``;
the goal's definition, p50 <= 1.5x) and ``read`` (bytes per second of a read-only ``max`` scan, the
tighter bound for a scan). A batch of 1,000 queries is one GEMM (compute bound, not memory bound):
its time is reported with its GFLOP/s and its own bound for one pass over the data.

Timing: single-query latency runs queries one at a time on one faiss thread (faiss parallelises
over queries; extra OpenMP threads only add fork/join waits to one query on a busy machine) for up
to ``--latency-seconds`` per index (the query count is recorded). Batch throughput is queries/s of one
``search`` call with all 1,000 queries, best of 2. Memory is the size of ``faiss.serialize_index``
and the process RSS growth over build. Other jobs may share the cores: the load average at start and
end is recorded.

Usage: ``python bench/index.py [--quick] [--sizes 10000,100000,1000000] [--kinds flat,hnsw,ivfpq]
[--variants uniform,clustered,minilm] [--merge]``. Results are written after every index, so an
interrupted run keeps what finished; ``--merge`` keeps entries of ``--output`` that this run does
not redo (to assemble a 1M run from pieces).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

from mmssl.io import write_json

RESULTS = Path(__file__).resolve().parent / "results" / "index.json"
DIM = 256
K = 10
NUM_QUERIES = 1000
NUM_CENTRES = 1000
# x = centre + NOISE * g / sqrt(d), g ~ N(0, I): cos(x, centre) ~ 1 / sqrt(1 + NOISE**2) ~ 0.8.
NOISE = 0.75
CHUNK = 100_000
RECALL_TARGET = 0.95
EF_SEARCH_SWEEP = (16, 32, 64, 128, 256, 512)
NPROBE_SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
K_FACTOR_SWEEP = (16, 64)
HNSW_GOAL_MS = 1.0
FLAT_GOAL_RATIO = 1.5

log = logging.getLogger("bench.index")


@dataclass
class Result:
    variant: str
    size: int
    kind: str
    factory: str
    params: dict = field(default_factory=dict)
    build_seconds: float = 0.0
    serialized_bytes: int = 0
    rss_delta_bytes: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_queries: int = 0
    batch_queries_per_second: float = 0.0
    recall_at_10: float = 0.0
    sweep: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def real_vectors(variant: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(database (n, d), queries (NUM_QUERIES, d)) of real unit embeddings, shuffled, disjoint."""
    if variant != "minilm":
        raise ValueError(f"unknown real variant {variant!r}")
    from mmssl.encoders.cache import default_cache_root

    files = sorted(default_cache_root().glob("minilm-*/vectors.npy"))
    if not files:
        raise FileNotFoundError(f"no MiniLM features under {default_cache_root()}: train or evaluate a model with "
                                "a locked MiniLM tower first (it fills the cache)")
    vectors = np.unique(np.concatenate([np.load(f) for f in files]).astype(np.float32), axis=0)  # (N, d)
    vectors = normalise(vectors[np.random.default_rng(seed).permutation(len(vectors))])
    return np.ascontiguousarray(vectors[NUM_QUERIES:]), np.ascontiguousarray(vectors[:NUM_QUERIES])


def make_vectors(variant: str, count: int, seed: int, stream: int) -> np.ndarray:
    """``count`` unit vectors (count, DIM) float32; ``stream`` separates database from queries."""
    rng = np.random.default_rng([seed, stream])
    centres = None
    if variant == "clustered":
        # Centres come from their own stream so database and queries share them.
        centres = normalise(np.random.default_rng([seed, 99]).standard_normal((NUM_CENTRES, DIM), dtype=np.float32))
    out = np.empty((count, DIM), dtype=np.float32)
    for start in range(0, count, CHUNK):
        stop = min(count, start + CHUNK)
        chunk = rng.standard_normal((stop - start, DIM), dtype=np.float32)  # (c, D)
        if centres is not None:
            chunk *= NOISE / math.sqrt(DIM)
            chunk += centres[rng.integers(0, NUM_CENTRES, stop - start)]
        out[start:stop] = normalise(chunk)
    return out


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _threaded(work, arrays: list, threads: int) -> None:
    """Run ``work(i, slice)`` over ``threads`` contiguous slices in parallel (numpy releases the GIL)."""
    import threading

    n = len(arrays[0])
    bounds = np.linspace(0, n, threads + 1).astype(int)
    pool = [threading.Thread(target=work, args=(slice(bounds[i], bounds[i + 1]),)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def bandwidths(threads: int = 1, gigabytes: float = 1.0, repeats: int = 3) -> dict:
    """Best-of-``repeats`` bytes/s on ``threads`` threads: ``copy`` (bytes copied by ``np.copyto``),
    ``copy_stream`` (the STREAM convention: read + written bytes, 2x copy) and ``read`` (a ``max`` scan)."""
    src = np.ones(int(gigabytes * 2**30) // 4, dtype=np.float32)
    dst = np.zeros_like(src)
    best = {"copy": math.inf, "read": math.inf}
    for _ in range(repeats):
        kernels = (("copy", lambda part: np.copyto(dst[part], src[part])), ("read", lambda part: src[part].max()))
        for name, work in kernels:
            start = time.perf_counter()
            _threaded(work, [src], threads)
            best[name] = min(best[name], time.perf_counter() - start)
    return {"threads": threads, "copy": src.nbytes / best["copy"], "copy_stream": 2 * src.nbytes / best["copy"],
            "read": src.nbytes / best["read"]}


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean |found ∩ truth| / k over queries; found, truth (Q, k) ids."""
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth))
    return hits / truth.size


def single_query_latency(index: faiss.Index, queries: np.ndarray, budget_seconds: float) -> tuple[float, float, int]:
    """p50, p99 (ms) of one-at-a-time search over queries on ONE thread, stopping after ``budget_seconds``.

    One thread, as a server answering single queries runs them (concurrent queries take the other
    cores): faiss parallelises over queries, and a second OpenMP thread on a busy machine only adds
    fork/join waits (a 1M Flat query measured 315 ms with 2 threads against ~100 ms with 1).
    """
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        for i in range(min(5, len(queries))):  # warm caches
            index.search(queries[i : i + 1], K)
        times = []
        deadline = time.perf_counter() + budget_seconds
        for i in range(len(queries)):
            start = time.perf_counter()
            index.search(queries[i : i + 1], K)
            times.append(time.perf_counter() - start)
            if time.perf_counter() > deadline and len(times) >= 20:
                break
    finally:
        faiss.omp_set_num_threads(threads)
    times_ms = np.array(times) * 1e3
    return float(np.percentile(times_ms, 50)), float(np.percentile(times_ms, 99)), len(times)


def batch_throughput(index: faiss.Index, queries: np.ndarray) -> tuple[float, np.ndarray]:
    best, ids = math.inf, None
    for _ in range(2):
        start = time.perf_counter()
        _, ids = index.search(queries, K)
        best = min(best, time.perf_counter() - start)
    return len(queries) / best, ids


def build_flat(data: np.ndarray, result: Result, train_per_list: int) -> faiss.Index:
    index = faiss.IndexFlatIP(data.shape[1])
    index.add(data)
    return index


def build_hnsw(data: np.ndarray, result: Result, train_per_list: int) -> faiss.Index:
    index = faiss.IndexHNSWFlat(data.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(data)
    return index


def _build_ivf(data: np.ndarray, result: Result, train_per_list: int, codes: str) -> faiss.Index:
    nlist = int(4 * math.sqrt(len(data)))
    result.factory = f"IVF{nlist},{codes},RFlat"
    index = faiss.index_factory(data.shape[1], result.factory, faiss.METRIC_INNER_PRODUCT)
    train_size = min(len(data), max(train_per_list * nlist, 10_000))
    # Every row is an independent draw (real vectors are shuffled), so a prefix is a random sample.
    index.train(data[:train_size])
    index.add(data)
    result.params.update(nlist=nlist, train_size=train_size)
    return index


def build_ivfpq(data: np.ndarray, result: Result, train_per_list: int) -> faiss.Index:
    return _build_ivf(data, result, train_per_list, f"PQ{data.shape[1] // 8}")


def build_ivfpqfs(data: np.ndarray, result: Result, train_per_list: int) -> faiss.Index:
    return _build_ivf(data, result, train_per_list, f"PQ{data.shape[1] // 4}x4fs")


BUILDERS = {
    "flat": (build_flat, "Flat"),
    "hnsw": (build_hnsw, f"HNSW{HNSW_M}"),
    "ivfpq": (build_ivfpq, "IVF,PQ{d/8},RFlat"),
    "ivfpqfs": (build_ivfpqfs, "IVF,PQ{d/4}x4fs,RFlat"),
}


def tune(kind: str, index: faiss.Index, queries: np.ndarray, truth: np.ndarray, result: Result) -> None:
    """Sweep the search knob; leave the index at the smallest setting reaching RECALL_TARGET."""
    if kind == "flat":
        return
    if kind == "hnsw":
        knob, values = "efSearch", EF_SEARCH_SWEEP

        def apply(value: int) -> None:
            index.hnsw.efSearch = value

    else:
        refine = faiss.downcast_index(index)
        ivf = faiss.extract_index_ivf(index)
        knob = "nprobe,k_factor"
        values = [(p, f) for p in [v for v in NPROBE_SWEEP if v < ivf.nlist] + [ivf.nlist] for f in K_FACTOR_SWEEP]

        def apply(value) -> None:
            ivf.nprobe, refine.k_factor = value

    chosen = None
    for value in values:
        apply(value)
        row = {knob: value}
        if kind.startswith("ivf"):
            refine.k_factor = 1  # re-ranking only the k found keeps the set: recall of PQ alone
            row["recall_at_10_no_rerank"] = recall_at_k(index.search(queries, K)[1], truth)
            apply(value)
        start = time.perf_counter()
        _, ids = index.search(queries, K)
        row["batch_queries_per_second"] = len(queries) / (time.perf_counter() - start)
        row["recall_at_10"] = recall_at_k(ids, truth)
        result.sweep.append(row)
        log.info("  %s=%s recall@10=%.4f", knob, value, row["recall_at_10"])
        if row["recall_at_10"] >= RECALL_TARGET:
            chosen = value
            break
    if chosen is None:
        chosen = values[-1]
        result.notes.append(f"recall@10 < {RECALL_TARGET} at the largest {knob}={chosen}")
    apply(chosen)
    if kind.startswith("ivf"):
        result.params.update(nprobe=chosen[0], k_factor=chosen[1])
    else:
        result.params[knob] = chosen


def run_one(kind: str, variant: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray, args) -> Result:
    builder, factory = BUILDERS[kind]
    result = Result(variant=variant, size=len(data), kind=kind, factory=factory)
    rss_before = rss_bytes()
    start = time.perf_counter()
    index = builder(data, result, args.train_per_list)
    result.build_seconds = time.perf_counter() - start
    result.rss_delta_bytes = rss_bytes() - rss_before
    result.serialized_bytes = int(faiss.serialize_index(index).size)
    tune(kind, index, queries, truth, result)
    result.batch_queries_per_second, ids = batch_throughput(index, queries)
    result.recall_at_10 = recall_at_k(ids, truth)
    result.latency_p50_ms, result.latency_p99_ms, result.latency_queries = single_query_latency(
        index, queries, args.latency_seconds
    )
    if kind == "flat":
        flat_against_bandwidth(data, result)
    if kind == "hnsw" and len(data) >= 1_000_000:
        met = result.latency_p50_ms <= HNSW_GOAL_MS and result.recall_at_10 >= RECALL_TARGET
        result.notes.append(f"goal p50 <= {HNSW_GOAL_MS} ms at recall@10 >= {RECALL_TARGET}: {'met' if met else 'missed'}")
    del index
    return result


def flat_against_bandwidth(data: np.ndarray, result: Result) -> None:
    """Single-query p50 and batch time of Flat against the bandwidth bounds measured just before
    (same load on the machine), on 1 thread and on faiss' thread count respectively."""
    scanned = data.nbytes  # bytes a query reads
    single, batch = bandwidths(1), bandwidths(faiss.omp_get_max_threads())
    batch_seconds = NUM_QUERIES / result.batch_queries_per_second
    flops = 2.0 * NUM_QUERIES * data.shape[0] * data.shape[1]
    result.params.update(
        bandwidth_single=single, bandwidth_batch=batch,
        copy_bound_ms=scanned / single["copy"] * 1e3, read_bound_ms=scanned / single["read"] * 1e3,
        p50_over_copy_bound=result.latency_p50_ms / (scanned / single["copy"] * 1e3),
        p50_over_stream_bound=result.latency_p50_ms / (scanned / single["copy_stream"] * 1e3),
        p50_over_read_bound=result.latency_p50_ms / (scanned / single["read"] * 1e3),
        batch_ms=batch_seconds * 1e3, batch_gflops=flops / batch_seconds / 1e9,
        batch_over_copy_bound=batch_seconds / (scanned / batch["copy"]),
    )
    ratio = result.params["p50_over_copy_bound"]
    result.notes.append(
        f"single query p50 = {ratio:.2f}x copy bound ({'met' if ratio <= FLAT_GOAL_RATIO else 'missed'} goal "
        f"<= {FLAT_GOAL_RATIO}x), {result.params['p50_over_stream_bound']:.2f}x STREAM-convention bound, "
        f"{result.params['p50_over_read_bound']:.2f}x read-scan bound; batch of {NUM_QUERIES} = "
        f"{result.params['batch_gflops']:.0f} GFLOP/s, {result.params['batch_over_copy_bound']:.1f}x one pass")


def print_table(results: list[dict]) -> None:
    header = f"{'variant':<10}{'n':>9} {'index':<26}{'knob':>22}{'build s':>9}{'ser MB':>9}{'rss MB':>9}{'p50 ms':>9}{'p99 ms':>9}{'n_lat':>6}{'batch q/s':>11}{'R@10':>7}  notes"
    print(header)
    print("-" * len(header))
    for r in results:
        knob = ", ".join(f"{k}={r['params'][k]}" for k in ("efSearch", "nprobe", "k_factor") if k in r["params"])
        print(
            f"{r['variant']:<10}{r['size']:>9} {r['factory']:<26}{knob:>22}{r['build_seconds']:>9.1f}"
            f"{r['serialized_bytes'] / 2**20:>9.1f}{r['rss_delta_bytes'] / 2**20:>9.1f}{r['latency_p50_ms']:>9.3f}"
            f"{r['latency_p99_ms']:>9.3f}{r['latency_queries']:>6}{r['batch_queries_per_second']:>11.0f}"
            f"{r['recall_at_10']:>7.3f}  {'; '.join(r['notes'])}"
        )


SYNTHETIC = ("uniform", "clustered")
REAL = ("minilm",)
CONTENTION = ("the benchmark machine has 2 cores shared with 5 other jobs (load average recorded per result): "
              "timings are noisy and pessimistic; ratios against bandwidth are measured right before under the "
              "same load")


def datasets(variant: str, sizes: list[int], seed: int):
    """Yield (size, database (n, d), queries (Q, d)) for ``variant``."""
    if variant in SYNTHETIC:
        queries = make_vectors(variant, NUM_QUERIES, seed, stream=1)  # (Q, D)
        for size in sizes:
            yield size, make_vectors(variant, size, seed, stream=0), queries  # (n, D)
        return
    try:
        database, queries = real_vectors(variant, seed)  # (N, d), (Q, d)
    except FileNotFoundError as e:
        log.warning("skipping %s: %s", variant, e)
        return
    for size in sorted({s for s in sizes if s < len(database)} | {len(database)}):
        yield size, database[:size], queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated database sizes")
    parser.add_argument("--kinds", default="flat,hnsw,ivfpq,ivfpqfs",
                        help=f"comma-separated subset of {','.join(BUILDERS)}")
    parser.add_argument("--variants", default="uniform,clustered,minilm",
                        help=f"comma-separated subset of {','.join(SYNTHETIC + REAL)}")
    parser.add_argument("--quick", action="store_true", help="sizes 10k and 100k only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-per-list", type=int, default=64, help="IVF training vectors per list (64..256)")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="time cap per single-query latency run")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--merge", action="store_true", help="keep entries of --output this run does not redo")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    sizes = [10_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    variants = args.variants.split(",")
    for name in kinds:
        if name not in BUILDERS:
            parser.error(f"unknown kind {name!r}; choose from {', '.join(BUILDERS)}")
    for name in variants:
        if name not in SYNTHETIC + REAL:
            parser.error(f"unknown variant {name!r}; choose from {', '.join(SYNTHETIC + REAL)}")

    machine = {
        "cpu_count": os.cpu_count(),
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "load_average_start": os.getloadavg(),
        "faiss_version": faiss.__version__,
        "numpy_version": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "contention": CONTENTION,
    }
    done = {}
    if args.merge and args.output.exists():
        for r in json.loads(args.output.read_text())["results"]:
            done[(r["variant"], r["size"], r["kind"])] = r

    progress = tqdm(desc="indexes")
    for variant in variants:
        for size, data, queries in datasets(variant, sizes, args.seed):
            _, truth = faiss.knn(queries, data, K, metric=faiss.METRIC_INNER_PRODUCT)  # (Q, K)
            for kind in kinds:
                log.info("%s n=%d d=%d %s", variant, size, data.shape[1], kind)
                load_before = os.getloadavg()
                result = run_one(kind, variant, data, queries, truth, args)
                result.params.update(dim=int(data.shape[1]), faiss_threads=faiss.omp_get_max_threads(),
                                     load_average_before=load_before, load_average_after=os.getloadavg())
                done[(variant, size, kind)] = asdict(result)
                machine["load_average_end"] = os.getloadavg()
                write_json(args.output, {"machine": machine, "config": {
                    "k": K, "num_queries": NUM_QUERIES, "seed": args.seed, "noise": NOISE, "num_centres": NUM_CENTRES,
                    "train_per_list": args.train_per_list, "recall_target": RECALL_TARGET,
                    "dims": {"uniform": DIM, "clustered": DIM, "minilm": 384}}, "results": list(done.values())},
                    indent=2)
                progress.update()
            del data
    progress.close()
    print(f"faiss {faiss.__version__}, {os.cpu_count()} CPUs, {faiss.omp_get_max_threads()} faiss threads, load "
          f"average start {machine['load_average_start']} end {machine.get('load_average_end')}")
    print_table(sorted(done.values(), key=lambda r: (r["variant"], r["size"], r["kind"])))


if __name__ == "__main__":
    main()
