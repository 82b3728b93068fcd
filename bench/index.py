"""Benchmark: build time, memory, latency, throughput and recall@10 of faiss indexes vs exact search.

Indexes (inner product on L2-normalised float32 vectors, dim 256):
  * ``flat``  -- ``IndexFlatIP``, exact; checked against the memory-bandwidth bound
    (n * d * 4 bytes scanned per query / measured copy bandwidth; goal: p50 <= 1.5x the bound).
  * ``hnsw``  -- ``HNSW32`` with efConstruction 80; efSearch is swept over 16..512 and the smallest
    value reaching recall@10 >= 0.95 is reported (goal at 1M: p50 <= 1 ms at that recall).
  * ``ivfpq`` -- ``IVF{4*sqrt(n)},PQ32,RFlat``: residual PQ with 32 bytes/vector, re-ranked exactly
    from the stored vectors (``k_factor`` x 10 candidates); nprobe is swept and the smallest value
    reaching recall@10 >= 0.95 is reported, with the recall before re-ranking alongside.

Data, from a fixed seed and generated in chunks: ``uniform`` -- Gaussian vectors normalised onto
the sphere, the hardest case for approximate search (no structure to exploit); ``clustered`` --
vectors scattered around 1,000 random unit centres (cosine ~0.8 to their centre), closer to real
embeddings. Queries are 1,000 held-out vectors from the same distribution; ground truth is exact
brute force (``faiss.knn``).

Timing: single-query latency runs queries one at a time with faiss' default thread count (recorded
in the JSON; faiss parallelises over queries, so one query uses one core) for up to
``--latency-seconds`` per index (the query count is recorded). Batch throughput is queries/s of one
``search`` call with all 1,000 queries, best of 2. Memory is the size of ``faiss.serialize_index``
and the process RSS growth over build. Other jobs may share the cores: the load average at start and
end is recorded.

Usage: ``python bench/index.py [--quick] [--sizes 10000,100000,1000000] [--kinds flat,hnsw,ivfpq]
[--variants uniform,clustered] [--merge]``. Results are written after every index, so an
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
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

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
PQ_BYTES = 32
REFINE_K_FACTOR = 16
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


def copy_bandwidth(gigabytes: float = 1.0, repeats: int = 3) -> float:
    """Best-of-``repeats`` bytes/s of one ``np.copyto`` (STREAM convention: read + written bytes)."""
    src = np.ones(int(gigabytes * 2**30) // 4, dtype=np.float32)
    dst = np.zeros_like(src)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean |found ∩ truth| / k over queries; found, truth (Q, k) ids."""
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth))
    return hits / truth.size


def single_query_latency(index: faiss.Index, queries: np.ndarray, budget_seconds: float) -> tuple[float, float, int]:
    """p50, p99 (ms) of one-at-a-time search over queries, stopping after ``budget_seconds``."""
    for i in range(min(5, len(queries))):  # warm caches and thread pool
        index.search(queries[i : i + 1], K)
    times = []
    deadline = time.perf_counter() + budget_seconds
    for i in range(len(queries)):
        start = time.perf_counter()
        index.search(queries[i : i + 1], K)
        times.append(time.perf_counter() - start)
        if time.perf_counter() > deadline and len(times) >= 20:
            break
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
    index = faiss.IndexFlatIP(DIM)
    index.add(data)
    return index


def build_hnsw(data: np.ndarray, result: Result, train_per_list: int) -> faiss.Index:
    index = faiss.IndexHNSWFlat(DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(data)
    return index


def build_ivfpq(data: np.ndarray, result: Result, train_per_list: int) -> faiss.Index:
    nlist = int(4 * math.sqrt(len(data)))
    result.factory = f"IVF{nlist},PQ{PQ_BYTES},RFlat"
    index = faiss.index_factory(DIM, result.factory, faiss.METRIC_INNER_PRODUCT)
    train_size = min(len(data), train_per_list * nlist)
    # Every row is an independent draw, so a prefix is a random sample.
    index.train(data[:train_size])
    index.add(data)
    result.params.update(nlist=nlist, train_size=train_size, k_factor=REFINE_K_FACTOR)
    return index


BUILDERS = {
    "flat": (build_flat, "Flat"),
    "hnsw": (build_hnsw, f"HNSW{HNSW_M}"),
    "ivfpq": (build_ivfpq, f"IVF,PQ{PQ_BYTES},RFlat"),
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
        knob, values = "nprobe", [v for v in NPROBE_SWEEP if v < ivf.nlist] + [ivf.nlist]

        def apply(value: int) -> None:
            ivf.nprobe = value

    chosen = None
    for value in values:
        apply(value)
        row = {knob: value}
        if kind == "ivfpq":
            refine.k_factor = 1  # re-ranking only the k found keeps the set: recall of PQ alone
            row["recall_at_10_no_rerank"] = recall_at_k(index.search(queries, K)[1], truth)
            refine.k_factor = REFINE_K_FACTOR
        start = time.perf_counter()
        _, ids = index.search(queries, K)
        row["batch_queries_per_second"] = len(queries) / (time.perf_counter() - start)
        row["recall_at_10"] = recall_at_k(ids, truth)
        result.sweep.append(row)
        log.info("  %s=%d recall@10=%.4f", knob, value, row["recall_at_10"])
        if row["recall_at_10"] >= RECALL_TARGET:
            chosen = value
            break
    if chosen is None:
        chosen = values[-1]
        result.notes.append(f"recall@10 < {RECALL_TARGET} at the largest {knob}={chosen}")
    apply(chosen)
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
        bound_ms = len(data) * DIM * 4 / args.bandwidth * 1e3
        ratio = result.latency_p50_ms / bound_ms
        result.params.update(bandwidth_bound_ms=bound_ms, p50_over_bound=ratio)
        result.notes.append(f"goal p50 <= {FLAT_GOAL_RATIO}x bandwidth bound: {'met' if ratio <= FLAT_GOAL_RATIO else 'missed'} ({ratio:.2f}x)")
    if kind == "hnsw" and len(data) >= 1_000_000:
        met = result.latency_p50_ms <= HNSW_GOAL_MS and result.recall_at_10 >= RECALL_TARGET
        result.notes.append(f"goal p50 <= {HNSW_GOAL_MS} ms at recall@10 >= {RECALL_TARGET}: {'met' if met else 'missed'}")
    del index
    return result


def print_table(results: list[dict]) -> None:
    header = f"{'variant':<10}{'n':>9} {'index':<22}{'knob':>14}{'build s':>9}{'ser MB':>9}{'rss MB':>9}{'p50 ms':>9}{'p99 ms':>9}{'n_lat':>6}{'batch q/s':>11}{'R@10':>7}  notes"
    print(header)
    print("-" * len(header))
    for r in results:
        knob = ", ".join(f"{k}={r['params'][k]}" for k in ("efSearch", "nprobe") if k in r["params"])
        print(
            f"{r['variant']:<10}{r['size']:>9} {r['factory']:<22}{knob:>14}{r['build_seconds']:>9.1f}"
            f"{r['serialized_bytes'] / 2**20:>9.1f}{r['rss_delta_bytes'] / 2**20:>9.1f}{r['latency_p50_ms']:>9.3f}"
            f"{r['latency_p99_ms']:>9.3f}{r['latency_queries']:>6}{r['batch_queries_per_second']:>11.0f}"
            f"{r['recall_at_10']:>7.3f}  {'; '.join(r['notes'])}"
        )


def write_atomically(payload: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(payload, handle, indent=2)
    os.replace(handle.name, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated database sizes")
    parser.add_argument("--kinds", default="flat,hnsw,ivfpq", help=f"comma-separated subset of {','.join(BUILDERS)}")
    parser.add_argument("--variants", default="uniform,clustered", help="comma-separated subset of uniform,clustered")
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
        if name not in ("uniform", "clustered"):
            parser.error(f"unknown variant {name!r}; choose from uniform, clustered")

    args.bandwidth = copy_bandwidth()
    log.info("copy bandwidth %.1f GB/s", args.bandwidth / 1e9)
    machine = {
        "cpu_count": os.cpu_count(),
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "load_average_start": os.getloadavg(),
        "faiss_version": faiss.__version__,
        "numpy_version": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "copy_bandwidth_bytes_per_second": args.bandwidth,
    }
    done = {}
    if args.merge and args.output.exists():
        for r in json.loads(args.output.read_text())["results"]:
            done[(r["variant"], r["size"], r["kind"])] = r

    jobs = [(v, n, k) for v in variants for n in sizes for k in kinds]
    progress = tqdm(total=len(jobs), desc="indexes")
    for variant in variants:
        queries = make_vectors(variant, NUM_QUERIES, args.seed, stream=1)  # (Q, D)
        for size in sizes:
            data = make_vectors(variant, size, args.seed, stream=0)  # (n, D)
            _, truth = faiss.knn(queries, data, K, metric=faiss.METRIC_INNER_PRODUCT)  # (Q, K)
            for kind in kinds:
                log.info("%s n=%d %s", variant, size, kind)
                result = run_one(kind, variant, data, queries, truth, args)
                done[(variant, size, kind)] = asdict(result)
                machine["load_average_end"] = os.getloadavg()
                write_atomically({"machine": machine, "config": {"dim": DIM, "k": K, "num_queries": NUM_QUERIES, "seed": args.seed, "noise": NOISE, "num_centres": NUM_CENTRES, "train_per_list": args.train_per_list, "recall_target": RECALL_TARGET}, "results": list(done.values())}, args.output)
                progress.update()
            del data
    progress.close()
    print(f"faiss {faiss.__version__}, {os.cpu_count()} CPUs, {faiss.omp_get_max_threads()} faiss threads, copy bandwidth {args.bandwidth / 1e9:.1f} GB/s, load average start {machine['load_average_start']} end {machine['load_average_end']}")
    print_table(sorted(done.values(), key=lambda r: (r["variant"], r["size"], r["kind"])))


if __name__ == "__main__":
    main()
