"""Device check: train the default CLIP config for a fixed number of steps and report samples/s.

Run by ``bench/gpu_check.sh`` (which makes the venv and the emoji corpus first), or directly:

    python bench/gpu_check.py                          # CUDA: fp32, bf16, bf16 + torch.compile
    python bench/gpu_check.py --variants bf16 --steps 500 --batch-size 1024
    python bench/gpu_check.py --smoke                  # CPU, 3 tiny steps: checks the script itself

Each variant is one ``train_dual_encoder`` run of the ``models/clip-default`` model config (locked
MiniLM captions through the feature cache, ResNet image tower from scratch; channels-last on, as
the trainer's ``auto`` picks for conv towers) on ``--corpora``; samples/s is the median of the
trainer's throughput windows after the first (warm-up and compilation) and the wall time of the
run is reported beside it. Results: a table and ``bench/results/gpu_check.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from mmssl.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gpu_check.json"
VARIANTS = {"fp32": dict(precision="fp32"), "bf16": dict(precision="bf16"),
            "bf16+compile": dict(precision="bf16", compile=True), "fp32+compile": dict(precision="fp32", compile=True)}


def run_variant(name: str, args, work: Path) -> dict:
    from mmssl.recipes.dual_encoder import DualEncoderRun, train_dual_encoder

    base = DualEncoderRun()  # the models/clip-default recipe
    train = replace(base.train, run_dir=str(work / name), max_steps=args.steps, batch_size=args.batch_size,
                    log_every=args.log_every, checkpoint_every=10 * args.steps, warmup_steps=min(100, args.steps),
                    num_workers=args.num_workers, progress=False, device=args.device, **VARIANTS[name])
    run = replace(base, corpora=args.corpora.split(","), output=str(work / f"{name}-model"), train=train,
                  evaluate=False, limit=args.limit or None)
    start = time.perf_counter()
    train_dual_encoder(run, command=["bench/gpu_check.py", name])
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in (work / name / "metrics.jsonl").read_text().splitlines() if line.strip()]
    windows = [r["samples_per_s"] for r in rows[1:]] or [rows[-1]["samples_per_s"]]
    return {"variant": name, "samples_per_s": round(statistics.median(windows), 1),
            "windows": [round(w, 1) for w in windows], "final_loss": round(rows[-1]["loss"], 4),
            "steps": args.steps, "batch_size": args.batch_size, "wall_s": round(wall, 1)}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, fp32, 3 steps of 8 on 64 pairs: checks the script")
    parser.add_argument("--variants", default="fp32,bf16,bf16+compile", help=f"comma-separated of {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=128, help="the recipe's default is 128")
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--corpora", default="emoji", help="the recipe uses emoji,clipart,stamps,game-icons")
    parser.add_argument("--limit", type=int, default=0, help="cap pairs per corpus (0 = all)")
    parser.add_argument("--num-workers", type=int, default=min(8, max(0, (os.cpu_count() or 1) - 2)),
                        help="data-loading processes: the PIL augmentations run on the CPU")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.variants, args.steps, args.batch_size, args.log_every = "fp32", 3, 8, 1
        args.limit, args.num_workers, args.device = args.limit or 64, 0, "cpu"
    elif args.device == "auto" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this check is for a GPU machine; use --smoke to check the script on CPU "
                         "or --device cpu to measure the CPU anyway")
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(sorted(unknown))}; choose from {', '.join(VARIANTS)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="mmssl-gpu-check-") as tmp:
        for name in args.variants.split(","):
            results.append(run_variant(name, args, Path(tmp)))
            r = results[-1]
            print(f"{name:14s} {r['samples_per_s']:9.1f} samples/s  (batch {r['batch_size']}, {r['steps']} steps, "
                  f"wall {r['wall_s']} s, final loss {r['final_loss']})", flush=True)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else platform.processor()
    print("\n| variant | samples/s | wall s |\n|---|---:|---:|")
    for r in results:
        print(f"| {r['variant']} | {r['samples_per_s']:.0f} | {r['wall_s']} |")
    meta = {"device": device, "torch": torch.__version__, "smoke": args.smoke, "corpora": args.corpora,
            "num_workers": args.num_workers, "argv": sys.argv[1:] if argv is None else argv}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.output, {"meta": meta, "results": results}, indent=2)
    print(f"wrote {args.output}")
    return results


if __name__ == "__main__":
    main()
