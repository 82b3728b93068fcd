"""Benchmark: training throughput of the dual-encoder recipes on 1 vs 2 processes (torchrun, gloo).

For each recipe (``clip``: the ``models/clip-default`` recipe, locked MiniLM captions + ResNet
image tower; ``code``: the ``python -m mmssl train code`` default) and each layout:

* ``1 proc x 1 thread``  -- ``OMP_NUM_THREADS=1``, one process;
* ``1 proc x 2 threads`` -- ``OMP_NUM_THREADS=2``, one process (the alternative on a 2-core box);
* ``2 procs x 1 thread`` -- ``torchrun --standalone --nproc_per_node 2``, gloo, global-batch negatives;

it trains ``--steps`` optimizer steps with the recipe's per-process batch (so 2 processes see a
global batch twice as large, as torchrun users get) and reads the trainer's own throughput log
(``metrics.jsonl``: samples/s over all ranks per ``log_every`` window, checkpoint time excluded).
Reported: the median window after the first (warm-up) one, and the wall time of the whole command
(imports, data loading and feature cache included) and its CPU seconds (user + sys of all its
processes). Speed-up is relative to ``1 proc x 1 thread``. ``--repeats N`` runs the layouts N times
in turn and reports the median of each, which evens out load that comes and goes.

The machine may be shared: the JSON records the 1-minute load average before and after each run,
and the CPU count. Under contention the scheduler shares the cores per runnable thread, so two
processes also win a larger share of a busy machine than one: compare the loads before trusting
a speed-up above 2. Usage: ``python bench/scaling.py [--recipes clip,code] [--steps 40]
[--log-every 5] [--repeats 1] [--corpora emoji]`` (default: the recipes' own corpora).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmssl.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scaling.json"
LAYOUTS = {"1 proc x 1 thread": (1, 1), "1 proc x 2 threads": (1, 2), "2 procs x 1 thread": (2, 1)}
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "GRADIO_ANALYTICS_ENABLED": "False"}


def run_layout(recipe: str, processes: int, threads: int, args, work: Path) -> dict:
    run_dir, output = work / f"{recipe}-{processes}x{threads}", work / f"{recipe}-{processes}x{threads}-model"
    flags = ["--train.max-steps", str(args.steps), "--train.log-every", str(args.log_every),
             "--train.checkpoint-every", str(10 * args.steps), "--train.warmup-steps", "1",
             "--train.run-dir", str(run_dir), "--output", str(output), "--evaluate", "false",
             "--train.progress", "false", "--train.seed", "0"]
    if args.corpora:
        flags += ["--corpora", args.corpora]
    if args.batch_size:
        flags += ["--train.batch-size", str(args.batch_size)]
    if args.limit:
        flags += ["--limit", str(args.limit)]
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                if processes > 1 else [sys.executable])
    command = [*launcher, str(ROOT / "scripts" / f"train_{recipe}.py"), *flags]
    env = dict(os.environ, **OFFLINE, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    windows = [r["samples_per_s"] for r in rows[1:]] or [rows[-1]["samples_per_s"]]
    config = json.loads((run_dir / "config.json").read_text())
    return {"recipe": recipe, "processes": processes, "threads_per_process": threads,
            "batch_per_process": config["batch_size"], "global_batch": config["batch_size"] * processes,
            "steps": args.steps, "samples_per_s": statistics.median(windows),
            "samples_per_s_windows": [round(w, 1) for w in windows], "final_loss": rows[-1]["loss"],
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2), "command": " ".join(command[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default="clip,code")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated names of LAYOUTS")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--log-every", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="run the layouts this many times in turn; report medians")
    parser.add_argument("--batch-size", type=int, default=0, help="per process; 0 = the recipe's default")
    parser.add_argument("--corpora", default="", help="comma-separated; default: the recipe's own")
    parser.add_argument("--limit", type=int, default=0, help="cap training pairs per corpus (0 = all)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="mmssl-scaling-") as tmp:
        for recipe in args.recipes.split(","):
            runs: dict[str, list[dict]] = {}
            for repeat in range(args.repeats):
                for name in args.layouts.split(","):
                    processes, threads = LAYOUTS[name]
                    row = run_layout(recipe, processes, threads, args, Path(tmp) / str(repeat))
                    runs.setdefault(name, []).append(row)
                    print(f"{recipe:5s} {name:19s} batch {row['global_batch']:4d}  {row['samples_per_s']:7.1f} "
                          f"samples/s  wall {row['wall_s']:6.1f} s  cpu {row['cpu_s']:6.1f} s  "
                          f"load {row['load_before']:.1f}->{row['load_after']:.1f}", flush=True)
            base = statistics.median(r["samples_per_s"] for r in runs.get("1 proc x 1 thread", [])) \
                if "1 proc x 1 thread" in runs else None
            for name, rows in runs.items():
                row = dict(rows[0], layout=name, repeats=[{k: r[k] for k in ("samples_per_s", "wall_s", "cpu_s",
                                                                             "load_before", "load_after")}
                                                          for r in rows])
                for key in ("samples_per_s", "wall_s", "cpu_s"):
                    row[key] = round(statistics.median(r[key] for r in rows), 1)
                row["speedup"] = round(row["samples_per_s"] / base, 2) if base else None
                results.append(row)
    print("\n| recipe | layout | global batch | samples/s | speed-up | wall s | CPU s | load avg (each run) |\n"
          "|---|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        loads = ", ".join(f"{x['load_before']}->{x['load_after']}" for x in r["repeats"])
        print(f"| {r['recipe']} | {r['layout']} | {r['global_batch']} | {r['samples_per_s']:.0f} | "
              f"{r['speedup'] if r['speedup'] is not None else '-'} | {r['wall_s']} | {r['cpu_s']} | {loads} |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    meta = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "note": "samples/s = median trainer window after the first; load = 1-min load average (the machine "
                    "may be shared with other jobs: a load above the core count means contention)",
            "argv": sys.argv[1:]}
    write_json(args.output, {"meta": meta, "results": results}, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
