#!/usr/bin/env python
"""Compare code models on the dev set's DEV split (full-corpus ranking), cheaply, to choose a training run.

    python scripts/code_dev_eval.py --model runs/r1/model --model runs/r2/model [--in-corpus-functions 1500]

MiniLM zero-shot (fast encoding, the feature cache) and each model, dense and hybrid (lexical weight chosen
on the dev split), over one index text (default ``full``, what the product embeds). A model whose item tower
has frozen layers is scored through the state cache (:func:`mmssl.eval.queries.state_model_system`): the
frozen part's states of the corpus are computed once for every run of the same start, so another checkpoint
costs only its top layers. Only dev-split rows are printed (the test split is for the report, see
``bench/code_search.py``); ``--output`` writes the JSON.

Noise: a paired bootstrap over the dev queries (seeded, the same resample for every system) gives the sd
of each system's MRR and of its difference to MiniLM zero-shot (dense against dense, hybrid against
MiniLM + BM25), and the share of resamples in which it is ahead; a difference within about one
``diff sd`` is not a finding.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from mmssl.eval.evaluate import _fmt, _table
from mmssl.eval.queries import (DEFAULT_QUERY_FILE, PARTS, EnsembleSystem, bootstrap_rows, code_model_system,
                                evaluate_queries,
                                load_queries, minilm_system, model_system, part_records, subsample_corpus)


def systems_for(models: list[str], states: bool, state_root: str | None = None,
                baselines: tuple[str, ...] = ()) -> list:
    systems = [minilm_system(encoding="fast")] + [model_system(m, encoding="fast") for m in baselines]
    return systems + [code_model_system(m, state_root, states) for m in models]


def dev_table(result: dict) -> str:
    cells: dict[tuple, dict] = {}
    for row in result["rows"]:
        if row["split"] == "dev":
            cells.setdefault((row["system"], row["lexical_weight"]), {})[row["part"]] = row
    lines = [[system, "-" if w is None else f"{w:.2f}",
              *(_fmt(parts[p][k]) if p in parts else "-" for p in PARTS for k in ("mrr", "recall@1", "recall@10"))]
             for (system, w), parts in cells.items()]
    return _table(["system", "w", "in MRR", "R@1", "R@10", "out MRR", "R@1", "R@10"], lines)


def bootstrap_table(rows: list[dict]) -> str:
    lines = [[r["system"], r["part"], f"{r['mrr']:.3f} ± {r['sd']:.3f}", f"{r['diff']:+.3f} ± {r['diff_sd']:.3f}",
              f"{r['p_better']:.2f}"] for r in rows if r["system"] != r["baseline"]]
    return _table(["system", "part", "MRR ± sd", "vs MiniLM ± sd", "P(ahead)"], lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], help="code model folder (repeatable)")
    parser.add_argument("--baseline", action="append", default=[], help="a model always encoded in full "
                        "(its embeddings cached on disk, e.g. the old release; repeatable)")
    parser.add_argument("--ensemble", action="store_true", help="also alpha * model + (1 - alpha) * MiniLM for "
                        "each --model, alpha on the grid 0.1..0.9")
    parser.add_argument("--queries", default=str(DEFAULT_QUERY_FILE))
    parser.add_argument("--index-text", default="full", choices=("full", "code"))
    parser.add_argument("--in-corpus-functions", type=int, default=1500, help="every target + a seeded sample "
                        "of the test split (0: all)")
    parser.add_argument("--no-states", action="store_true", help="encode every model in full, no state cache")
    parser.add_argument("--state-root", help="state cache root (default <data root>/cache/features)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of the dev queries")
    parser.add_argument("--output", help="write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    start = time.perf_counter()
    queries = load_queries(args.queries)
    sizes = {"in-corpus": args.in_corpus_functions or None, "out-of-corpus": None}
    records = {p: subsample_corpus(part_records(p, queries), [q for q in queries if q["part"] == p], size)
               for p, size in sizes.items()}
    systems = systems_for(args.model, not args.no_states, args.state_root, tuple(args.baseline))
    if args.ensemble:
        minilm, tuned = systems[0], systems[1 + len(args.baseline):]
        systems += [EnsembleSystem(f"{t.name} x MiniLM {a:.1f}", t, minilm, a) for t in tuned
                    for a in (0.3, 0.5, 0.7)]
    result = evaluate_queries(queries, systems, texts=(args.index_text,), records=records, bm25=True)
    result["corpus_sizes"] = {p: len(r) for p, r in records.items()}
    print(f"dev split, index text {args.index_text!r}, corpora {result['corpus_sizes']} "
          f"({time.perf_counter() - start:.0f} s)\n")
    print(dev_table(result))
    result["bootstrap"] = bootstrap_rows(result, "dev", num_resamples=args.resamples)
    print(f"\npaired bootstrap over the dev queries ({args.resamples} resamples, seed 0)\n")
    print(bootstrap_table(result["bootstrap"]))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
