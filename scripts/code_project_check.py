#!/usr/bin/env python
"""The product check: `index build --project` over installed packages + `mmssl search --queries --json`, MRR.

    python scripts/code_project_check.py --model models/code-default --package fastapi --package cairocffi

For each package: the dev set's queries on it (``--split``, default ``test``) are answered by the CLI as a
user runs it (hybrid ranking unless ``--mode``), over an index of that package alone (every function,
documented or not, index text ``full``); a query's rank is its target's position among the hits (``path``
and ``func_name``), past ``-k`` counted as not found (reciprocal rank 0). Prints per package and overall MRR,
Recall@1/10 and writes ``--output`` JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from mmssl.eval.queries import DEFAULT_QUERY_FILE, load_queries, package_folder


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mmssl", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"mmssl {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def ranks_for(package: str, queries: list[dict], model: str, mode: str, k: int, work: Path) -> list[int | None]:
    index = work / f"{package}-{Path(model).name}"
    cli("index", "build", str(index), "--model", model, "--project", str(package_folder(package)))
    query_file = work / f"{package}.jsonl"
    query_file.write_text("".join(json.dumps({"text": q["text"]}) + "\n" for q in queries))
    lines = [json.loads(line) for line in cli("search", "--index", str(index), "--queries", str(query_file),
                                              "--json", "-k", str(k), "--mode", mode).splitlines() if line.strip()]
    ranks = []
    for query, answer in zip(queries, lines):
        hits = [(Path(h["path"]).as_posix(), h["func_name"]) for h in answer["hits"]]
        target = (query["path"], query["func_name"])
        found = [i for i, (path, name) in enumerate(hits, 1) if name == target[1] and path.endswith(target[0])]
        ranks.append(found[0] if found else None)
    return ranks


def metrics(ranks: list[int | None]) -> dict:
    n = len(ranks)
    return {"mrr": sum(1 / r for r in ranks if r) / n, "recall@1": sum(1 for r in ranks if r == 1) / n,
            "recall@10": sum(1 for r in ranks if r and r <= 10) / n, "num_queries": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--package", action="append", required=True)
    parser.add_argument("--queries", default=str(DEFAULT_QUERY_FILE))
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    parser.add_argument("--mode", default="hybrid", choices=("hybrid", "dense", "lexical"))
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--output")
    args = parser.parse_args()
    queries = [q for q in load_queries(args.queries) if q["part"] == "out-of-corpus" and q["split"] == args.split]
    result, every = {"model": args.model, "mode": args.mode, "split": args.split, "k": args.k, "packages": {}}, []
    with tempfile.TemporaryDirectory() as work:
        for package in args.package:
            mine = [q for q in queries if q["repo"] == package]
            if not mine:
                raise SystemExit(f"no {args.split}-split queries on {package} in {args.queries}")
            ranks = ranks_for(package, mine, args.model, args.mode, args.k, Path(work))
            every += ranks
            result["packages"][package] = {**metrics(ranks), "ranks": ranks}
            print(f"{package}: {result['packages'][package]}")
    result["overall"] = metrics(every)
    print(f"overall ({args.mode}, {args.split} split): {result['overall']}")
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
