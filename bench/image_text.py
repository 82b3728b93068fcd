#!/usr/bin/env python
"""Image–text search benchmark: text→image Recall@1/5/10 on held-out concepts per image corpus and on the
unseen-style split, for the random ranking, the old release, the new release, and the recipe from scratch
vs with mmssl's own pretraining at equal optimisation time (3 seeds, mean ± sd).

    python bench/image_text.py                        # table: random, old, new, and the saved runs
    python bench/image_text.py --train                # (re)run scratch vs pretrained first (resumable)
    python bench/image_text.py --train --budget-s 420 --pretrain-share 0.36 --seeds 0,1,2 \\
        --dual-steps-per-s 0.80 --pretrain-steps-per-s 0.45
    python bench/image_text.py --train --time-budget --budget-s 1860 --pretrain-share 0.3333 --seeds 0 \
        --source-shares emoji=0.16,clipart=0.12,game-icons=0.12,stamps=0.04 \
        --runs-dir runs/bench-image-text-long    # the long arms: each stage stopped by seconds, fixed corpus shares

Equal compute: every run gets ``--budget-s`` seconds of optimisation, turned into steps from the step rates
measured on this machine (``--*-steps-per-s``); the scratch arm spends it all on the dual encoder, the
pretrained arm ``--pretrain-share`` of it on pretraining the image tower (SimCLR on multiview pairs: one
concept in two artworks or icon sets, each augmented) and the rest on the same dual encoder. Each run writes
its JSON (steps, seconds actually spent, metrics) to ``--runs-dir``; the table reads them back. All numbers
come from :func:`mmssl.eval.evaluate.evaluate_image`. With ``--time-budget`` each stage stops by its seconds
(``train.max_seconds``) instead of steps from the rates, and ``--source-shares`` fixes each corpus's share of
the batches in both stages; the table shows these long arms (``--long-runs-dir``, one seed each) beside the
3-seed short ones. Writes ``bench/results/image_text.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

for _key, _value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                     ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(_key, _value)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmssl.eval.evaluate import UNSEEN_STYLE_ROW, evaluate_image  # noqa: E402
from mmssl.io import write_json  # noqa: E402

CORPORA = ["emoji", "clipart", "stamps", "game-icons", "iconsets", "emoji-artworks"]
ROWS = [*CORPORA, UNSEEN_STYLE_ROW]
KS = (1, 5, 10)
ARMS = ("scratch", "pretrained")
RESULTS = ROOT / "bench" / "results"


def recalls(results: dict, corpus: str) -> dict[str, float]:
    """Text→image recall@K of one corpus row of :func:`evaluate_image`'s results."""
    t2i = results["corpora"][corpus]["text_to_image"]
    return {f"recall@{k}": t2i[f"recall@{k}"] for k in KS}


def random_recalls(results: dict, corpus: str) -> dict[str, float]:
    t2i = results["corpora"][corpus]["text_to_image"]["random"]
    return {f"recall@{k}": t2i[f"recall@{k}"] for k in KS}


# choosing between runs reads the valid split of the four small corpora only (1.1k images, seconds), not the
# 8k valid images of all six
VALID_CORPORA = ["emoji", "clipart", "stamps", "game-icons"]


def score_model(folder: str | Path, splits: tuple[str, ...] = ("test", "unseen")) -> dict:
    """``{split: results}`` of :func:`evaluate_image`: every built corpus, :data:`VALID_CORPORA` for valid."""
    return {split: evaluate_image(folder, split=split, corpora=VALID_CORPORA if split == "valid" else None)
            for split in splits}


def held_out_rows(scores: dict) -> dict[str, dict[str, float]]:
    """The table's rows of one model: each corpus on its held-out test concepts, and the unseen-style row."""
    rows = {c: recalls(scores["test"], c) for c in CORPORA if c in scores["test"]["corpora"]}
    if UNSEEN_STYLE_ROW in scores["unseen"]["corpora"]:
        rows[UNSEEN_STYLE_ROW] = recalls(scores["unseen"], UNSEEN_STYLE_ROW)
    return rows


def random_rows(scores: dict) -> dict[str, dict[str, float]]:
    rows = {c: random_recalls(scores["test"], c) for c in CORPORA if c in scores["test"]["corpora"]}
    if UNSEEN_STYLE_ROW in scores["unseen"]["corpora"]:
        rows[UNSEEN_STYLE_ROW] = random_recalls(scores["unseen"], UNSEEN_STYLE_ROW)
    return rows


# ---------------------------------------------------------------------------------------------
# scratch vs pretrained at equal compute


def arm_run(arm: str, seed: int, args):
    """The DualEncoderRun of one arm and seed, its steps set from the budget and the measured rates."""
    from mmssl.recipes.dual_encoder import DualEncoderRun, PretrainStage

    run = DualEncoderRun(corpora=CORPORA, evaluate=False, limit=args.limit)
    folder = Path(args.runs_dir) / f"{arm}-s{seed}"
    run.output = str(folder / "model")
    pretrain_s = args.budget_s * args.pretrain_share if arm == "pretrained" else 0.0
    run.train.run_dir, run.train.seed, run.train.progress = str(folder / "run"), seed, False
    run.train.source_shares = [s for s in args.source_shares.split(",") if s]
    if args.time_budget:
        return time_budget_run(run, arm, pretrain_s, folder, args)
    run.train.max_steps = max(1, round((args.budget_s - pretrain_s) * args.dual_steps_per_s))
    run.train.warmup_steps = max(1, round(args.warmup_share * run.train.max_steps))
    run.train.checkpoint_every = run.train.max_steps
    if arm == "pretrained":
        steps = max(1, round(pretrain_s * args.pretrain_steps_per_s))
        run.pretrain = PretrainStage(steps=steps, batch_size=args.pretrain_batch_size, lr=args.pretrain_lr,
                                     warmup_steps=max(1, round(args.warmup_share * steps)),
                                     run_dir=str(folder / "pretrain"))
    return run


def time_budget_run(run, arm: str, pretrain_s: float, folder: Path, args):
    """``run`` with each stage stopped by seconds (``train.max_seconds``), not steps: its steps are a cap only."""
    from mmssl.recipes.dual_encoder import PretrainStage

    run.train.max_steps, run.train.max_seconds = MAX_STEPS, args.budget_s - pretrain_s
    run.train.warmup_steps, run.train.checkpoint_every, run.train.log_every = args.warmup_steps, 100, 25
    run.train.resume = True  # a killed arm continues from its last checkpoint
    if arm == "pretrained":
        run.pretrain = PretrainStage(steps=MAX_STEPS, max_seconds=pretrain_s, batch_size=args.pretrain_batch_size,
                                     lr=args.pretrain_lr, warmup_steps=args.pretrain_warmup_steps,
                                     run_dir=str(folder / "pretrain"))
    return run


MAX_STEPS = 1_000_000  # a cap the time budget always reaches first


def train_arm(arm: str, seed: int, args) -> dict:
    """Train and score one run (skipped if its JSON exists); returns its record."""
    from mmssl.recipes.dual_encoder import train_dual_encoder

    out = Path(args.runs_dir) / f"{arm}-s{seed}.json"
    if out.exists():
        return json.loads(out.read_text())
    run = arm_run(arm, seed, args)
    started = time.perf_counter()
    folder = train_dual_encoder(run, command=["bench/image_text.py", "--train", f"{arm}", f"seed={seed}"])
    manifest = json.loads((folder / "manifest.json").read_text())
    wall = time.perf_counter() - started
    eval_start = time.perf_counter()
    scores = score_model(folder, ("valid", "test", "unseen"))
    pretrain = manifest.get("pretrain")
    record = {"arm": arm, "seed": seed, "model": str(folder), "dual_steps": manifest["steps"],
              "dual_seconds": manifest["train_seconds"], "dual_max_seconds": run.train.max_seconds,
              "pretrain_max_seconds": run.pretrain.max_seconds, "source_shares": run.train.source_shares,
              "pretrain_steps": pretrain["steps"] if pretrain else 0,
              "pretrain_seconds": pretrain["seconds"] if pretrain else 0.0,
              "wall_seconds_with_data": round(wall, 1), "eval_seconds": round(time.perf_counter() - eval_start, 1),
              "held_out_concept_pairs_dropped": manifest["held_out_concept_pairs_dropped"],
              "train_pairs": manifest["train_pairs"], "final_train_loss": manifest["final_train_loss"],
              "valid": {c: recalls(scores["valid"], c) for c in scores["valid"]["corpora"]},
              "rows": held_out_rows(scores)}
    record["optimisation_seconds"] = round(record["dual_seconds"] + record["pretrain_seconds"], 1)
    write_json(out, record, indent=2)
    print(f"[bench] {arm} seed {seed}: {record['optimisation_seconds']:.0f} s of optimisation; "
          f"unseen-style R@10 {record['rows'].get(UNSEEN_STYLE_ROW, {}).get('recall@10', float('nan')):.3f}")
    return record


def saved_runs(runs_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*-s*.json"))]


def arm_summary(runs: list[dict], arm: str) -> dict:
    """Mean and sd over the seeds of one arm: ``{row: {recall@K: [mean, sd]}}``, plus seeds and seconds."""
    chosen = [r for r in runs if r["arm"] == arm]
    if not chosen:
        return {}
    rows = {}
    for row in ROWS:
        values = [r["rows"][row] for r in chosen if row in r["rows"]]
        if values:
            rows[row] = {f"recall@{k}": [statistics.fmean(v[f"recall@{k}"] for v in values),
                                         statistics.stdev(v[f"recall@{k}"] for v in values) if len(values) > 1 else 0.0]
                         for k in KS}
    valid = {}
    for corpus in chosen[0]["valid"]:
        valid[corpus] = statistics.fmean(r["valid"][corpus]["recall@10"] for r in chosen)
    return {"seeds": [r["seed"] for r in chosen], "rows": rows, "valid_recall@10": valid,
            "optimisation_seconds": [r["optimisation_seconds"] for r in chosen],
            "dual_steps": chosen[0]["dual_steps"], "pretrain_steps": chosen[0]["pretrain_steps"]}


def long_models(runs: list[dict]) -> dict[str, dict]:
    """The table's rows of each long run (one seed an arm: its own numbers, no sd), named by arm, seed and
    minutes of optimisation."""
    return {f"{r['arm']} (long, seed {r['seed']}, {r['optimisation_seconds'] / 60:.0f} min)": r["rows"]
            for r in sorted(runs, key=lambda r: (ARMS.index(r["arm"]), r["seed"]))}


# ---------------------------------------------------------------------------------------------
# table


def _cell(value) -> str:
    if isinstance(value, list):
        return f"{value[0]:.3f}±{value[1]:.3f}"
    return f"{value:.3f}"


def format_table(models: dict[str, dict]) -> str:
    """One line per (model, row): R@1, R@5, R@10 (mean±sd for the arms)."""
    header = ["model", "corpus", "R@1", "R@5", "R@10"]
    lines = [[name, row, *(_cell(rows[row][f"recall@{k}"]) for k in KS)]
             for name, rows in models.items() for row in ROWS if row in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines)]
    out = ["  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
           for line in [header, *lines]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", action="store_true", help="run the scratch and pretrained arms first (resumable)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget-s", type=float, default=420.0, help="optimisation seconds per run")
    parser.add_argument("--pretrain-share", type=float, default=2.5 / 7)
    parser.add_argument("--dual-steps-per-s", type=float, default=0.8, help="dual-encoder steps/s measured here")
    parser.add_argument("--pretrain-steps-per-s", type=float, default=0.45, help="pretraining steps/s measured here")
    parser.add_argument("--pretrain-batch-size", type=int, default=64)
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--warmup-share", type=float, default=0.1, help="warm-up steps as a share of each stage")
    parser.add_argument("--time-budget", action="store_true",
                        help="stop each stage by its seconds (train.max_seconds) instead of steps from the rates")
    parser.add_argument("--warmup-steps", type=int, default=100, help="--time-budget: dual-encoder warm-up steps")
    parser.add_argument("--pretrain-warmup-steps", type=int, default=20, help="--time-budget: pretraining warm-up")
    parser.add_argument("--source-shares", default="",
                        help="corpus shares of each batch, both stages, e.g. emoji=0.15,clipart=0.12 (train.source_shares)")
    parser.add_argument("--limit", type=int, default=None, help="pairs per corpus (a quick check of the script)")
    parser.add_argument("--runs-dir", default=str(ROOT / "runs" / "bench-image-text"))
    parser.add_argument("--long-runs-dir", default=str(ROOT / "runs" / "bench-image-text-long"),
                        help="the long arms (--time-budget, one seed each), read into the table beside --runs-dir")
    parser.add_argument("--old", default="/tmp/clip-old", help="the previous release (a copy of models/clip-default)")
    parser.add_argument("--new", default=str(ROOT / "models" / "clip-default"))
    parser.add_argument("--output", default=str(RESULTS / "image_text.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if args.train:
        if Path(args.old).is_dir():
            cached_scores(args.old, Path(args.runs_dir))  # the baseline first: known even if the runs stop early
        for seed in seeds:
            for arm in ARMS:
                train_arm(arm, seed, args)
    runs = saved_runs(Path(args.runs_dir))
    models: dict[str, dict] = {}
    summaries = {arm: arm_summary(runs, arm) for arm in ARMS}
    releases = {}
    seen = set()
    for name, path in (("old", args.old), ("new", args.new)):
        if Path(path).is_dir() and _weights_hash(path) not in seen:  # new == old until a release replaces it
            seen.add(_weights_hash(path))
            scores = cached_scores(path, Path(args.runs_dir))
            if "random" not in models:
                models["random"] = random_rows(scores)
            releases[name] = {"path": str(path), "manifest": _manifest(path)}
            models[f"{name} ({Path(path).name})"] = held_out_rows(scores)
    for arm, summary in summaries.items():
        if summary:
            models[f"{arm} (mean±sd, {len(summary['seeds'])} seeds)"] = summary["rows"]
    long_runs = [] if Path(args.long_runs_dir).resolve() == Path(args.runs_dir).resolve() \
        else saved_runs(Path(args.long_runs_dir))
    models.update(long_models(long_runs))
    print(format_table(models))
    write_json(Path(args.output), {"task": "text-to-image recall on held-out concepts (test) and the unseen-style row",
                                   "seconds": round(time.perf_counter() - started, 1), "releases": releases,
                                   "equal_compute": {"budget_s": args.budget_s, "pretrain_share": args.pretrain_share,
                                                     "arms": summaries, "runs": runs},
                                   "equal_compute_long": {"runs_dir": str(args.long_runs_dir), "runs": long_runs},
                                   "models": models}, indent=2)
    return 0


def _weights_hash(folder: str | Path) -> str:
    import hashlib

    return hashlib.sha1((Path(folder) / "model.safetensors").read_bytes()).hexdigest()[:16]


def cached_scores(folder: str | Path, runs_dir: Path) -> dict:
    """:func:`score_model` of a release folder, kept in ``runs_dir`` by weights hash (an eval is minutes on CPU)."""
    cache = runs_dir / f"release-{_weights_hash(folder)}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    scores = score_model(folder)
    write_json(cache, scores, indent=1)
    return scores


def _manifest(path: str | Path) -> dict | None:
    file = Path(path) / "manifest.json"
    if not file.is_file():
        return None
    manifest = json.loads(file.read_text())
    return {k: manifest.get(k) for k in ("command", "corpora", "steps", "train_minutes", "pretrain")}


if __name__ == "__main__":
    raise SystemExit(main())
