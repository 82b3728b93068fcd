#!/usr/bin/env python
"""Contrastive pretraining benchmark: does each unimodal contrastive method give a better tower than
random init, and a better dual-encoder start than scratch? Same protocol as ``bench/pretext.py``
(:mod:`mmssl.recipes.pretrain_protocol`), so the two tables compare directly.

For every (method, modality) asked for:

1. pretrain ``--steps`` steps on the train split (emoji images with ``resnet-tiny-64``, or code
   functions with an attention-pooled NBoW), recording first/last loss, the collapse monitor
   (mean and min per-dimension std of the normalised embeddings, in units of 1/sqrt(D)) and, for
   the clustering methods, the cluster rounds (non-empty clusters, NMI between rounds);
2. frozen-feature probes: linear-probe and kNN accuracy on emoji image -> Unicode group
   (and clipart -> category with ``--clipart``) or function -> package, vs the same tower at
   random init;
3. downstream retrieval: the dual-encoder recipe with the item tower initialised from the
   checkpoint vs from scratch, same budget and seed (emoji text->image R@10; code MRR).

    python bench/contrastive.py                                   # image methods, small budget, 1 thread
    python bench/contrastive.py --modality code --methods simclr,deepcluster,cmc,supervised
    python bench/contrastive.py --steps 1000 --downstream-steps 500 --clipart

Prints a table and merges its rows into ``bench/results/contrastive.json`` (row ``method`` is
``simclr`` for images, ``simclr (code)`` for code; ``supervised-<loss>`` names its loss). ``supervised`` uses the probe task's own train
labels (Unicode group / package), so it is an upper reference, not a self-supervised result.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

for _key, _value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                     ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(_key, _value)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pretext import _metrics, _shared_tokenizer, _write, add_protocol_arguments, parse_protocol_args  # noqa: E402  (one protocol, one writer)

from mmssl.contrastive import METHODS, ContrastiveConfig  # noqa: E402
from mmssl.encoders.tower import TowerConfig  # noqa: E402
from mmssl.recipes.contrastive import contrastive_run_defaults, pretrain_contrastive  # noqa: E402
from mmssl.recipes.pretrain_protocol import (downstream_retrieval, format_protocol_table,  # noqa: E402
                                             load_labelled_task, probe_pretrained_vs_random)
from mmssl.train.config import TrainConfig  # noqa: E402

RESULTS = ROOT / "bench" / "results"
IMAGE_TOWER = TowerConfig(name="resnet-tiny-64")
CODE_TOWER = TowerConfig(name="nbow", width=128, max_length=128, pooling="attention")


def _options(method: str, args) -> ContrastiveConfig:
    """Settings for a short run: a queue and clusters sized to a ~2,700-item training set."""
    options = contrastive_run_defaults(method).options
    return dataclasses.replace(options, queue_size=args.queue_size, momentum=0.99, num_clusters=args.clusters,
                               recluster_every=args.recluster_every, pca_dim=64, num_negatives=1024,
                               loss=args.supervised_loss, mining=args.mining, margin=0.2,
                               temperature=args.snn_temperature if args.supervised_loss == "soft_nearest_neighbour"
                               else options.temperature)


def _cluster_rounds(run_dir: Path) -> list[dict]:
    path = run_dir / "clusters.jsonl"
    if not path.exists():
        return []
    return [{k: v for k, v in json.loads(line).items() if k != "sizes"} | {"largest": json.loads(line)["sizes"][0]}
            for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    parser.add_argument("--modality", choices=("image", "code"), default="image")
    parser.add_argument("--steps", type=int, default=100, help="pretraining steps per method")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--queue-size", type=int, default=1024, help="moco")
    parser.add_argument("--clusters", type=int, default=50, help="deepcluster, interclr")
    parser.add_argument("--recluster-every", type=int, default=25, help="deepcluster, interclr")
    parser.add_argument("--supervised-loss", default="triplet", help="supervised: a labelled loss of mmssl.losses")
    parser.add_argument("--mining", default="hard", help="supervised triplet: all, hard or semi_hard")
    parser.add_argument("--snn-temperature", type=float, default=0.1, help="supervised soft_nearest_neighbour")
    parser.add_argument("--clipart", action="store_true", help="also probe clipart -> category (image methods)")
    add_protocol_arguments(parser, 100, str(ROOT / "runs" / "bench-contrastive"), str(RESULTS / "contrastive.json"))
    args, methods = parse_protocol_args(parser, argv, METHODS)
    work = Path(args.work_dir) / args.modality
    work.mkdir(parents=True, exist_ok=True)
    image = args.modality == "image"
    tokenizer_file = None if image else _shared_tokenizer(Path(args.work_dir), args.vocab_size)
    encoder = IMAGE_TOWER if image else dataclasses.replace(CODE_TOWER, tokenizer=str(tokenizer_file))
    task_names = (["emoji-category"] + (["clipart-category"] if args.clipart else [])) if image else ["code-package"]
    tasks = {name: load_labelled_task(name, max_train_per_class=args.probe_train_per_class,
                                      max_test_per_class=args.probe_test_per_class) for name in task_names}
    scratch = None
    rows = []
    started = time.perf_counter()
    for method in methods:
        run_dir = work / method
        shutil.rmtree(run_dir, ignore_errors=True)
        run = contrastive_run_defaults(method)
        run.modality, run.corpora, run.encoder = args.modality, ["emoji"] if image else ["code"], encoder
        run.options = _options(method, args)
        run.train = TrainConfig(run_dir=str(run_dir), max_steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                warmup_steps=max(1, min(50, args.steps // 10)), checkpoint_every=args.steps,
                                log_every=max(1, args.steps // 10), progress=False)
        print(f"\n=== {method} ({args.modality})", flush=True)
        t0 = time.perf_counter()
        pretrain_contrastive(run)
        history = _metrics(run_dir)
        last = history[-1]
        name = method if method != "supervised" else f"supervised-{args.supervised_loss}" + \
            (f"-{args.mining}" if args.supervised_loss == "triplet" else "")
        row = {"method": name if image else f"{name} (code)", "encoder": encoder.name,
               "pretrain": {"steps": args.steps, "batch_size": args.batch_size,
                            "seconds": round(time.perf_counter() - t0, 1), "first_loss": history[0]["loss"],
                            "last_loss": last["loss"], "samples_per_s": last.get("samples_per_s"),
                            "embedding_std_mean": last.get("embedding_std_mean"),
                            "embedding_std_min": last.get("embedding_std_min"),
                            "collapsed": last.get("collapsed"),
                            "last_logs": {k: v for k, v in last.items() if k not in ("step", "lr")}},
               "options": dataclasses.asdict(run.options)}
        rounds = _cluster_rounds(run_dir)
        if rounds:
            row["cluster_rounds"] = rounds
        row["probes"] = {}
        for name, task in tasks.items():
            row["probes"][name] = {"summary": task.summary(),
                                   **probe_pretrained_vs_random(encoder, run_dir, task, seed=0)}
        row["task"] = task_names[0]
        row["probe"] = {k: row["probes"][task_names[0]][k] for k in ("pretrained", "random")}
        print(f"[bench] {method} probes: {json.dumps(row['probes'])}", flush=True)
        if args.downstream_steps > 0:
            kind = "image-text" if image else "code"
            budget = TrainConfig(max_steps=args.downstream_steps, batch_size=args.downstream_batch_size, lr=1e-3,
                                 warmup_steps=max(1, min(50, args.downstream_steps // 10)),
                                 checkpoint_every=args.downstream_steps,
                                 log_every=max(1, args.downstream_steps // 10), progress=False)
            kwargs = {} if image else {"code_eval_pairs": args.code_eval_pairs,
                                       "code_query": TowerConfig(name="nbow", max_length=32,
                                                                 tokenizer=str(tokenizer_file))}
            pre = downstream_retrieval(dataclasses.replace(encoder, pretrained=str(run_dir)), kind, budget,
                                       work / "downstream" / f"{method}-pretrained", **kwargs)
            if scratch is None:
                scratch = downstream_retrieval(dataclasses.replace(encoder, pretrained="scratch"), kind, budget,
                                               work / "downstream" / "scratch", **kwargs)
            row["downstream"] = {"pretrained": pre, "scratch": scratch}
            print(f"[bench] {method} downstream: {json.dumps(row['downstream'])}", flush=True)
        rows.append(row)
        _write(args, rows, started)

    print()
    print(format_protocol_table(rows))
    print("\ncollapse monitor (last window; 1.0 = spread like a uniform sphere) and cluster rounds:")
    for r in rows:
        p = r["pretrain"]
        line = (f"  {r['method']:<20} loss {p['first_loss']:.3f} -> {p['last_loss']:.3f}  std mean "
                f"{p['embedding_std_mean']:.3f} min {p['embedding_std_min']:.3f}  collapsed {p['collapsed']:.0f}")
        if r.get("cluster_rounds"):
            last_round = r["cluster_rounds"][-1]
            line += (f"  rounds {len(r['cluster_rounds'])}, non-empty {last_round['nonempty']}/"
                     f"{r['options']['num_clusters']}, NMI {last_round['nmi_previous']}")
        print(line)
        for name, probe in r["probes"].items():
            if name != r["task"]:
                print(f"  {'':<20} {name}: linear {probe['pretrained']['linear_probe']:.3f} vs random "
                      f"{probe['random']['linear_probe']:.3f}, kNN {probe['pretrained']['knn']:.3f} vs "
                      f"{probe['random']['knn']:.3f}")
    print(f"\nwrote {args.output} ({(time.perf_counter() - started) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
