"""Benchmark: code search, CodeSearchNet protocol and developer-style queries, in one run.

Systems: BM25, MiniLM zero-shot (all-MiniLM-L6-v2 on both sides) and each ``--model`` (default
``models/code-default``), each dense and hybrid (dense + BM25, min-max fusion; the lexical weight
is chosen on the dev set's dev split and used unchanged everywhere else). Two evaluations:

(a) the CodeSearchNet protocol on the code corpus's held-out test split (docstring -> code, groups
    of 1000, seed 0, pessimistic ties; the docstring-cut index text, as the protocol requires);
(b) the dev set (``mmssl/data/devset/code_queries.jsonl``): full-corpus ranking, in-corpus (the
    test split, every function) and out-of-corpus (every function of the dev set's installed
    packages, undocumented ones included), dev and test splits, for both index-text variants
    (``code`` = docstring cut, ``full`` = name + class + signature + docstring + body).

Embeddings are cached (``<data root>/cache/features`` for MiniLM, ``<data root>/cache/code_search``
for models): the full run embeds ~17k texts per model (5,770 + ~2,700 functions x 2 index texts),
tens of minutes per model on 2 free cores, a rerun only scores. ``--in-corpus-functions N`` /
``--out-of-corpus-functions N`` rank over every query target plus a seeded uniform sample of the
other functions (recorded in the JSON), for machines where that is too slow; the CSN protocol then
runs on the same in-corpus functions (one group of N). Prints a table and writes
``bench/results/code_search.json``.

Usage: ``nice -n 15 python bench/code_search.py [--model models/code-default ...] [--fusion minmax|rrf]
[--in-corpus-functions 400 --out-of-corpus-functions 300]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from mmssl.eval.codesearchnet import codesearchnet_eval, codesearchnet_mrr
from mmssl.eval.evaluate import KS, _fmt, _table
from mmssl.eval.fusion import fuse_scores
from mmssl.eval.queries import (
    DEFAULT_QUERY_FILE,
    evaluate_queries,
    format_query_table,
    load_queries,
    EnsembleSystem,
    code_model_system,
    minilm_system,
    model_system,
    part_records,
    subsample_corpus,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "code_search.json"


def csn_rows(records: list[dict], systems, weights: dict[str, float], fusion: str, group_size: int = 1000) -> list[dict]:
    """CodeSearchNet protocol (docstring -> docstring-cut code) for BM25 and each system, dense and hybrid."""
    from mmssl.eval.bm25 import BM25Index, lexical_terms

    docstrings, codes = [r["docstring"] for r in records], [r["code"] for r in records]
    bm25 = BM25Index([lexical_terms(r["code_tokens"]) for r in records])
    lexical = bm25.pair_scorer([lexical_terms(r["docstring_tokens"]) for r in records])
    group_size = min(group_size, len(records))
    rows = [{"system": "BM25", "lexical_weight": None, **_metrics(codesearchnet_eval(lexical, len(records), group_size,
                                                                                      0, KS, progress=False))}]
    for system in systems:
        queries = torch.from_numpy(np.asarray(system.encode_queries(docstrings), dtype=np.float32))  # (Q, E)
        docs = torch.from_numpy(np.asarray(system.encode_documents(codes), dtype=np.float32))  # (Q, E)
        rows.append({"system": system.name, "lexical_weight": None,
                     **_metrics(codesearchnet_mrr(queries, docs, group_size, 0, KS))})
        weight = weights[system.name]

        def fused(query_indices, candidate_indices, queries=queries, docs=docs, weight=weight):
            dense = (queries[query_indices] @ docs[candidate_indices].T).numpy()  # (G, G)
            return torch.from_numpy(fuse_scores(dense, lexical(query_indices, candidate_indices).numpy(), weight,
                                                fusion))

        rows.append({"system": f"{system.name} + BM25", "lexical_weight": weight,
                     **_metrics(codesearchnet_eval(fused, len(records), group_size, 0, KS, progress=False))})
    return rows


ALPHA_GRID = tuple(round(0.1 * i, 1) for i in range(11))


def choose_ensemble(queries, tuned, base, records, text: str = "full") -> tuple[EnsembleSystem, dict]:
    """The score ensemble ``alpha * tuned + (1 - alpha) * base`` with the best dev-split MRR (mean of
    both parts, dense, index text ``text``), and the dev MRR of every alpha tried."""
    grid = {}
    for alpha in ALPHA_GRID:
        ensemble = EnsembleSystem(f"{tuned.name} x MiniLM", tuned, base, alpha)
        rows = evaluate_queries(queries, [ensemble], texts=(text,), records=records, bm25=False)["rows"]
        dev = [r["mrr"] for r in rows if r["system"] == ensemble.name and r["split"] == "dev"]
        grid[alpha] = float(np.mean(dev))
    best = max(grid, key=lambda a: (grid[a], -abs(a - 0.5)))
    return EnsembleSystem(f"{tuned.name} x MiniLM (alpha {best:.1f})", tuned, base, best), grid


def _metrics(result: dict) -> dict:
    return {"mrr": result["mrr"], **{f"recall@{k}": result[f"recall@{k}"] for k in KS},
            "num_queries": result["num_queries"], "num_groups": result["num_groups"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="code model folder (repeatable; default models/code-default)")
    parser.add_argument("--queries", default=str(DEFAULT_QUERY_FILE))
    parser.add_argument("--fusion", default="minmax", choices=("minmax", "rrf"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--encoding", default="fast", choices=("fp32", "fast"), help="how MiniLM towers run "
                        "(mmssl.model; fast = 128-token cap, length-bucketed batches), for every dense system")
    parser.add_argument("--no-ensemble", action="store_true", help="skip the score ensemble alpha * model + "
                        "(1 - alpha) * MiniLM zero-shot (alpha chosen on the dev split)")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--in-corpus-functions", type=int, default=None, help="rank over every query target plus a "
                        "seeded sample of the test split up to this many functions (default: all 5,770); the CSN "
                        "protocol then runs on the same functions")
    parser.add_argument("--state-root", help="score models whose item tower has frozen layers through the state "
                        "cache under this folder (mmssl.eval.queries.state_model_system: float16 frozen-part states "
                        "shared by every model of the same start, so each further model runs only its top layers)")
    parser.add_argument("--baseline", action="append", default=[], help="a model always encoded in full "
                        "(e.g. the old release, its embeddings cached; repeatable)")
    parser.add_argument("--out-of-corpus-functions", type=int, default=None, help="the same for the out-of-corpus "
                        "packages (default: all of their functions)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("MMSSL_BENCH_THREADS", "2")))
    start, load = time.perf_counter(), os.getloadavg()
    models = args.model or [str(ROOT / "models" / "code-default")]
    minilm = minilm_system(encoding=args.encoding)
    tuned = [model_system(m, batch_size=args.batch_size, encoding=args.encoding) for m in args.baseline]
    tuned += [code_model_system(m, args.state_root, args.state_root is not None, args.batch_size, args.encoding)
              for m in models]
    queries = load_queries(args.queries)
    sizes = {"in-corpus": args.in_corpus_functions, "out-of-corpus": args.out_of_corpus_functions}
    records = {}
    for part, size in sizes.items():
        part_queries = [q for q in queries if q["part"] == part]
        records[part] = subsample_corpus(part_records(part, queries), part_queries, size)

    ensembles = [] if args.no_ensemble else [choose_ensemble(queries, system, minilm, records) for system in tuned]
    systems = [minilm] + tuned + [e for e, _ in ensembles]
    devset = evaluate_queries(queries, systems, fusion=args.fusion, records=records)
    weights = {row["system"].removesuffix(" + BM25"): row["lexical_weight"] for row in devset["rows"]
               if row["lexical_weight"] is not None and row["index_text"] == "code"}
    test_split = records["in-corpus"]  # the CSN protocol over the same held-out functions
    csn = csn_rows(test_split, [minilm] + tuned, weights, args.fusion)  # ensembles: dev set only
    result = {
        "benchmark": "code_search", "models": args.baseline + models, "queries": str(args.queries),
        "fusion": args.fusion, "encoding": args.encoding,
        "state_cache": None if args.state_root is None else "models with frozen layers scored through float16 "
                       "frozen-part states (mmssl.eval.queries.state_model_system)",
        "ensembles": [{"system": e.name, "alpha": e.alpha, "dev_mrr_by_alpha": grid,
                       "chosen_on": "dev split, mean of both parts, index text 'full'"} for e, grid in ensembles],
        "corpus_sizes": {part: len(r) for part, r in records.items()},
        "subsample": {**sizes, "seed": 0, "rule": "every query target + a seeded uniform sample of the rest"},
        "codesearchnet": {"split": "test", "num_pairs": len(test_split), "group_size": min(1000, len(test_split)),
                          "seed": 0, "ties": "pessimistic", "index_text": "code",
                          "lexical_weight_from": "dev set, dev split, index text 'code'", "rows": csn},
        "devset": devset,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
                    "loadavg_start": load, "loadavg_end": os.getloadavg()},
        "seconds": round(time.perf_counter() - start, 1),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.output).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.output)
    lines = [[r["system"], "-" if r["lexical_weight"] is None else f"{r['lexical_weight']:.2f}",
              *(_fmt(r[k]) for k in ("mrr", "recall@1", "recall@5", "recall@10"))] for r in csn]
    print(f"(a) CodeSearchNet protocol, test split: {len(test_split)} pairs, groups of "
          f"{result['codesearchnet']['group_size']}, seed 0, pessimistic ties\n")
    print(_table(["system", "w", "MRR", "R@1", "R@5", "R@10"], lines))
    print("\n(b) " + format_query_table(devset))
    print(f"\nwrote {args.output} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
