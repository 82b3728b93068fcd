#!/usr/bin/env python
"""Pretext pretraining benchmark: does each self-prediction method give a better tower than random init?

For every method of ``mmssl.pretext.METHODS`` (its default tower, the train split of its corpus):

1. pretrain ``--steps`` steps (loss first/last, samples/s);
2. frozen-feature probes (``mmssl.recipes.pretrain_protocol``): linear-probe and kNN accuracy on a
   real labelled task — emoji image -> Unicode group (9 classes) for image towers, function ->
   package (24 packages, held-out modules) for code towers — pretrained vs the same tower at random
   init;
3. downstream retrieval: the dual-encoder recipe with the item tower initialised from the
   checkpoint vs from scratch, same budget (``--downstream-steps``) and seed: emoji text->image R@10
   (locked MiniLM captions) or code MRR (trainable NBoW queries, CodeSearchNet groups of 1,000);
4. VQ-VAE/VQ-GAN: held-out reconstruction MSE (vs the per-image mean-colour reference), codebook
   perplexity and use on the test images, and a PNG grid (originals / reconstructions / prior samples);
   the generative methods' samples go to ``bench/results/pretext_samples/``.

    python bench/pretext.py                                    # every method, small budget, 1 thread
    python bench/pretext.py --methods rotation,mae --steps 1000 --downstream-steps 500

Prints a table and merges its rows into ``bench/results/pretext.json``: a method's new row replaces
its old one, other methods' rows stay, so methods can be run in separate invocations (batches);
each row names its invocation (``run``) and ``runs`` records every invocation's settings.
Generative samples and grids go to ``pretext_samples/`` beside the output. Scratch downstream runs
are shared by methods with the same tower and budget (same config, same seed: the same run), also
across invocations: their result is kept in ``<work-dir>/downstream/scratch-<key>/result.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

for _key, _value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                     ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(_key, _value)

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmssl.io import write_json  # noqa: E402
from mmssl.pretext import METHODS, build_method  # noqa: E402
from mmssl.recipes.pretext import pretext_run_defaults, pretrain  # noqa: E402
from mmssl.recipes.pretrain_protocol import (downstream_retrieval, format_protocol_table,  # noqa: E402
                                             load_labelled_task, probe_pretrained_vs_random)
from mmssl.train.config import TrainConfig  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _shared_tokenizer(work: Path, vocab_size: int) -> Path:
    """One code tokenizer for every code method and the downstream query tower (one vocabulary)."""
    from mmssl.data.corpus import load_corpus
    from mmssl.encoders import save_code_tokenizer, train_code_tokenizer

    path = work / "code_tokenizer.json"
    if not path.exists():
        records = load_corpus("code", "train")
        texts = [t for pair in zip(records["docstring"], records["code"]) for t in pair]
        save_code_tokenizer(train_code_tokenizer(texts, vocab_size=vocab_size), path)
    return path


def _samples_dir(output: str | Path) -> Path:
    """Where a results file's samples go: ``bench/results/pretext.json`` -> ``bench/results/pretext_samples/``."""
    output = Path(output)
    return output.with_name(f"{output.stem}_samples")


def _relative(path: Path) -> str:
    """``path`` relative to the repository when inside it (what the JSON records), else absolute."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _scratch_downstream(item, kind: str, budget: TrainConfig, root: Path, **kwargs) -> dict:
    """``downstream_retrieval`` of ``item`` from scratch, run once per (tower, task, budget, seed) and
    kept on disk, so methods sharing a tower share one scratch run, also across invocations."""
    item = dataclasses.replace(item, pretrained="scratch")
    key = json.dumps({"item": dataclasses.asdict(item), "kind": kind, "budget": dataclasses.asdict(budget),
                      **{k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in kwargs.items()}},
                     sort_keys=True, default=str)
    folder = root / f"scratch-{item.name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    cached = folder / "result.json"
    if cached.is_file():
        print(f"[bench] scratch {item.name} downstream: reusing {cached}", flush=True)
        return {k: v for k, v in json.loads(cached.read_text()).items() if k != "key"}
    result = downstream_retrieval(item, kind, budget, folder, **kwargs)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(cached, {**result, "key": json.loads(key)}, indent=2)
    return result


def _load_method(run, run_dir: Path):
    """The trained method module, from the run's last checkpoint."""
    from safetensors.torch import load_file

    from mmssl.encoders.tower import resolve_checkpoint_file

    method = build_method(run)
    method.load_state_dict(load_file(str(resolve_checkpoint_file(run_dir))))
    return method.eval()


@torch.no_grad()
def _vq_report(run, run_dir: Path, name: str, samples_dir: Path, count: int = 16) -> dict:
    """Held-out reconstruction MSE, codebook perplexity/use, and a PNG grid of originals/reconstructions/samples."""
    from mmssl.data.corpus import load_corpus
    from mmssl.data.pairs import load_images
    from mmssl.pretext.sampling import save_image_grid
    from mmssl.pretext.vqvae import sample_vqvae
    from PIL import Image

    method = _load_method(run, run_dir)
    test = load_corpus("emoji", "test")
    transform = method.encoder.transform(train=False)
    images = torch.stack([transform(Image.fromarray(a)) for a in load_images(test["image"])])  # (N, 3, S, S)
    mse, mean_colour_mse, counts = 0.0, 0.0, torch.zeros(method.quantizer.num_codes)
    for start in range(0, len(images), 128):
        x = images[start:start + 128]
        _, q, indices = method.encode(x)
        mse += torch.nn.functional.mse_loss(method.decode(q), x, reduction="sum").item()
        mean_colour_mse += (x - x.mean(dim=(2, 3), keepdim=True)).pow(2).sum().item()
        counts += torch.bincount(indices.flatten(), minlength=len(counts)).float()
    p = counts / counts.sum()
    perplexity = float(torch.exp(-(p * (p + 1e-10).log()).sum()))
    originals = images[:count]
    grid = torch.cat([originals, method.reconstruct(originals).clamp(-1, 1), sample_vqvae(method, count)])
    png = save_image_grid(grid, samples_dir / f"{name}_grid.png", columns=count)
    return {"test_images": len(images), "reconstruction_mse": mse / images.numel(),
            "mean_colour_reference_mse": mean_colour_mse / images.numel(),
            "codebook_perplexity": perplexity, "codes_used": float((counts > 0).float().mean()),
            "num_codes": len(counts), "png": _relative(png)}


def add_protocol_arguments(parser: argparse.ArgumentParser, downstream_steps: int, work_dir: str,
                           output: str) -> None:
    """The probe and downstream flags of both pretraining benches (this one and bench/contrastive.py)."""
    parser.add_argument("--downstream-steps", type=int, default=downstream_steps,
                        help="dual-encoder steps (0: skip downstream)")
    parser.add_argument("--downstream-batch-size", type=int, default=64)
    parser.add_argument("--code-eval-pairs", type=int, default=1000, help="code test pairs scored downstream")
    parser.add_argument("--probe-train-per-class", type=int, default=100)
    parser.add_argument("--probe-test-per-class", type=int, default=50)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work-dir", default=work_dir)
    parser.add_argument("--output", default=output)


def parse_protocol_args(parser: argparse.ArgumentParser, argv: list[str] | None,
                        known_methods) -> tuple[argparse.Namespace, list[str]]:
    """Parse, set the thread count, and return (args, the ``--methods`` list checked against ``known_methods``)."""
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in known_methods]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; known: {', '.join(known_methods)}")
    return args, methods


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    parser.add_argument("--steps", type=int, default=150, help="pretraining steps per method")
    parser.add_argument("--batch-size", type=int, default=32)
    add_protocol_arguments(parser, 150, str(ROOT / "runs" / "bench-pretext"), str(RESULTS / "pretext.json"))
    args, methods = parse_protocol_args(parser, argv, METHODS)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    samples_dir = _samples_dir(args.output)
    samples_dir.mkdir(parents=True, exist_ok=True)

    tasks, rows = {}, []
    tokenizer_file = None
    started = time.perf_counter()
    for method in methods:
        spec = METHODS[method]
        run = pretext_run_defaults(method)
        if spec.data == "text":
            tokenizer_file = tokenizer_file or _shared_tokenizer(work, args.vocab_size)
            if run.encoder.name != "wavenet":
                run.encoder = dataclasses.replace(run.encoder, tokenizer=str(tokenizer_file))
        run_dir = work / method
        shutil.rmtree(run_dir, ignore_errors=True)
        run.samples = 8
        if method == "vqgan":  # the GAN terms must switch on inside a short run (default: after 100 steps)
            run.vqvae = dataclasses.replace(run.vqvae, discriminator_start=min(run.vqvae.discriminator_start,
                                                                               args.steps // 2))
        run.train = TrainConfig(run_dir=str(run_dir), max_steps=args.steps, batch_size=args.batch_size,
                                lr=spec.lr, warmup_steps=max(1, min(50, args.steps // 10)),
                                checkpoint_every=args.steps, log_every=max(1, args.steps // 15), progress=False)
        print(f"\n=== {method}: {spec.description}", flush=True)
        t0 = time.perf_counter()
        pretrain(run)
        history = _metrics(run_dir)
        row = {"method": method, "encoder": run.encoder.name, "description": spec.description,
               "pretrain": {"steps": args.steps, "batch_size": args.batch_size, "seconds": round(time.perf_counter() - t0, 1),
                            "first_loss": history[0]["loss"], "last_loss": history[-1]["loss"],
                            "samples_per_s": history[-1].get("samples_per_s"),
                            "first_logs": {k: v for k, v in history[0].items() if k not in ("lr",)},
                            "last_logs": {k: v for k, v in history[-1].items() if k not in ("step", "lr")}}}
        if method in ("vqvae", "vqgan"):
            row["options"] = dataclasses.asdict(run.vqvae)
        for sample in ("samples.txt", "samples.png"):
            if (run_dir / sample).exists():
                target = samples_dir / f"{method}{Path(sample).suffix}"
                shutil.copyfile(run_dir / sample, target)
                row["samples"] = _relative(target)

        task_name = "emoji-category" if spec.data == "images" else "code-package"
        if task_name not in tasks:
            tasks[task_name] = load_labelled_task(task_name, max_train_per_class=args.probe_train_per_class,
                                                  max_test_per_class=args.probe_test_per_class)
        task = tasks[task_name]
        row["task"] = task_name
        row["task_summary"] = task.summary()
        row["probe"] = probe_pretrained_vs_random(run.encoder, run_dir, task, seed=0)
        print(f"[bench] {method} probe: {json.dumps(row['probe'])}", flush=True)

        if method in ("vqvae", "vqgan"):
            row["vq"] = _vq_report(run, run_dir, method, samples_dir)
            print(f"[bench] {method} VQ: {json.dumps(row['vq'])}", flush=True)

        if args.downstream_steps > 0:
            kind = "image-text" if spec.data == "images" else "code"
            budget = TrainConfig(max_steps=args.downstream_steps, batch_size=args.downstream_batch_size,
                                 lr=1e-3, warmup_steps=max(1, min(50, args.downstream_steps // 10)),
                                 checkpoint_every=args.downstream_steps, log_every=max(1, args.downstream_steps // 10),
                                 progress=False)
            item = dataclasses.replace(run.encoder, locked=False)
            kwargs = {"code_eval_pairs": args.code_eval_pairs}
            if kind == "code":
                from mmssl.encoders.tower import TowerConfig

                kwargs["code_query"] = TowerConfig(name="nbow", max_length=32, tokenizer=str(tokenizer_file))
            shutil.rmtree(work / "downstream" / f"{method}-pretrained", ignore_errors=True)
            pre = downstream_retrieval(dataclasses.replace(item, pretrained=str(run_dir)), kind, budget,
                                       work / "downstream" / f"{method}-pretrained", **kwargs)
            row["downstream"] = {"pretrained": pre,
                                 "scratch": _scratch_downstream(item, kind, budget, work / "downstream", **kwargs)}
            print(f"[bench] {method} downstream: {json.dumps(row['downstream'])}", flush=True)
        rows.append(row)
        _write(args, rows, started)

    merged = json.loads(Path(args.output).read_text())["rows"] if rows else []
    print(f"\nevery row of {args.output} (this invocation: {', '.join(methods)}):")
    print(format_protocol_table(merged))
    print("\npretraining (loss: mean of the first / last logging window):")
    for r in merged:
        p = r["pretrain"]
        print(f"  {r['method']:<10} {p['steps']} steps x {p['batch_size']}: loss {p['first_loss']:.3f} -> "
              f"{p['last_loss']:.3f}, {p['samples_per_s'] or 0:.1f} samples/s, {p['seconds']:.0f} s  [{r['run']}]")
    for r in merged:
        if "vq" in r:
            v = r["vq"]
            print(f"{r['method']}: test reconstruction MSE {v['reconstruction_mse']:.4f} (mean-colour reference "
                  f"{v['mean_colour_reference_mse']:.4f}), codebook perplexity {v['codebook_perplexity']:.1f} of "
                  f"{v['num_codes']} codes, {v['codes_used']:.0%} used; grid {v['png']}")
    print(f"\nwrote {args.output} ({(time.perf_counter() - started) / 60:.1f} min)")
    return 0


_RUN_ID = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} pid {os.getpid()}"  # this invocation


def _write(args, rows: list[dict], started: float) -> None:
    """Merge this invocation's rows into the output, locked and written atomically.

    A method's new row replaces its old row; other methods' rows are kept, so several invocations
    (batches of methods, or image and code methods in two processes) fill one file. Each row names
    its invocation (``run``); ``runs`` keeps the settings of every invocation a row still names.
    """
    import fcntl

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(f".{out.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = json.loads(out.read_text()) if out.exists() else {}
        old_runs = old.get("runs", [])
        for i, entry in enumerate(old_runs):  # files written before rows named their run
            entry.setdefault("id", f"earlier run {i + 1}")
            for r in old.get("rows", []):
                if "run" not in r and r["method"] in entry.get("methods", []):
                    r["run"] = entry["id"]
        for r in rows:
            r.setdefault("run", _RUN_ID)
        ours = {r["method"] for r in rows}
        merged = [r for r in old.get("rows", []) if r["method"] not in ours] + rows
        merged.sort(key=lambda r: list(METHODS).index(r["method"]) if r["method"] in METHODS else len(METHODS))
        named = {r.get("run") for r in merged}
        runs = [entry for entry in old_runs if entry["id"] in named and entry["id"] != _RUN_ID]
        runs.append({"id": _RUN_ID, **vars(args), "methods": sorted(ours),
                     "minutes": round((time.perf_counter() - started) / 60, 2)})
        data = {"torch": torch.__version__, "runs": runs, "rows": merged}
        write_json(out, data, indent=2, default=str)


if __name__ == "__main__":
    raise SystemExit(main())
