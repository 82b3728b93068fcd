"""Benchmark: code-encoding throughput of models/code-default, fp32 vs the fast path vs the other candidates.

Rows (the code tower + projection of the release code model, on CPU, real functions from the code
corpus test split, a fixed random sample):

* ``before``: the build path before this bench (per 256-item slices, sorted by characters,
  batches of 64 padded to their longest, max length 256);
* ``fp32``: today's fp32 path (``load_model(encoding="fp32")``): the whole sample in one call,
  batched by token length in small buckets; exact;
* ``fast``: ``load_model(encoding="fast")``: the same, truncated at ``FAST_MAX_LENGTH`` tokens;
* ``int8-torch``: ``torch.ao.quantization.quantize_dynamic`` of every Linear (per-channel int8);
* ``ort-fp32`` / ``ort-int8``: the tower + projection exported to ONNX and run by ONNX Runtime
  (``onnxruntime.quantization.quantize_dynamic``, per-channel uint8 weights); only when
  onnxruntime is installed (it is not a project requirement: see the notes in the JSON).

Each row reports functions/s of wall time and per CPU-second (``time.process_time``: the cores are
shared, so CPU time is the steadier measure), at 1 and 2 torch/ORT threads, the ratio to
``before``, and the cosine of its embeddings to ``fp32`` (min and mean).

MRR: the CodeSearchNet protocol (mmssl.eval.codesearchnet, groups of 1000, seed 0) of fp32 and
fast on the first ``--mrr-groups`` of the test split's groups (a documented fixed subset: the
full protocol has 5 groups; each group is scored exactly as the full eval scores it).

Usage: ``python bench/encode.py [--sample 300] [--threads 1,2] [--mrr-groups 1] [--candidates ...]``;
writes bench/results/encode.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mmssl  # noqa: E402
from mmssl.model import FAST_MAX_LENGTH, RetrievalModel  # noqa: E402

MODEL = ROOT / "models" / "code-default"
RESULTS = ROOT / "bench" / "results" / "encode.json"
OLD_SLICE, OLD_BATCH = 256, 64


def test_functions(n: int, seed: int = 0) -> list[str]:
    from mmssl.data.corpus import load_corpus

    codes = load_corpus("code", "test")["code"]
    picked = np.random.default_rng(seed).choice(len(codes), size=min(n, len(codes)), replace=False)
    return [codes[i] for i in sorted(picked)]


def encode_before(model: RetrievalModel, codes: list[str]) -> np.ndarray:
    """The old build path: 256-item slices, each sorted by characters, batches of 64 padded to their longest."""
    tower, projection = model.dual_encoder.item_tower, model.dual_encoder.item_projection
    out = np.zeros((len(codes), model.embed_dim), np.float32)  # (N, E)
    with torch.inference_mode():
        for start in range(0, len(codes), OLD_SLICE):
            rows = sorted(range(start, min(start + OLD_SLICE, len(codes))), key=lambda i: len(codes[i]))
            for b in range(0, len(rows), OLD_BATCH):
                batch = rows[b:b + OLD_BATCH]
                out[batch] = projection(tower(tower.prepare([codes[i] for i in batch]))).numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


class _TowerGraph(torch.nn.Module):
    """Code tower + projection as one module of (input_ids, attention_mask), for export and quantization."""

    def __init__(self, model: RetrievalModel):
        super().__init__()
        self.tower, self.projection = model.dual_encoder.item_tower, model.dual_encoder.item_projection

    def forward(self, input_ids, attention_mask):
        return self.projection(self.tower({"input_ids": input_ids, "attention_mask": attention_mask}))  # (B, E)


def int8_torch_model(model: RetrievalModel) -> RetrievalModel:
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    dual = quantize_dynamic(copy.deepcopy(model.dual_encoder), {torch.nn.Linear: per_channel_dynamic_qconfig},
                            dtype=torch.qint8)
    return RetrievalModel(dual, model.path, model.device, model.batch_size)


def ort_encoder(model: RetrievalModel, folder: Path, int8: bool):
    """An ``encode(codes) -> (N, E)`` running the exported tower in ONNX Runtime (bucketed like fp32)."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from mmssl.encoders.tower import bucketed_batches

    path = folder / "tower.onnx"
    if not path.exists():
        ids = torch.ones(2, 16, dtype=torch.long)
        torch.onnx.export(_TowerGraph(model).eval(), (ids, ids), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "b", 1: "l"}, "attention_mask": {0: "b", 1: "l"}})
    if int8:
        quantized = folder / "tower-int8.onnx"
        if not quantized.exists():
            quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QUInt8, per_channel=True)
        path = quantized
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    tower = model.dual_encoder.item_tower

    def encode(codes: list[str]) -> np.ndarray:
        out = np.zeros((len(codes), model.embed_dim), np.float32)  # (N, E)
        for rows, inputs in bucketed_batches(tower, codes, 16):
            out[rows] = session.run(None, {"input_ids": inputs["input_ids"].numpy(),
                                           "attention_mask": inputs["attention_mask"].numpy()})[0]
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    return encode


def timed(encode, codes: list[str]) -> tuple[np.ndarray, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = encode(codes)
    return vectors, time.perf_counter() - wall, time.process_time() - cpu


def speed_rows(model: RetrievalModel, codes: list[str], candidates: list[str], threads: list[int]) -> list[dict]:
    fast = model.with_encoding("fast")
    encoders = {"before": lambda c: encode_before(model, c), "fp32": lambda c: model.encode_code(c, batch_size=16),
                "fast": fast.encode_code}
    work = Path(tempfile.mkdtemp(prefix="mmssl-bench-encode-"))
    rows = []
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        if "int8-torch" in candidates:
            encoders["int8-torch"] = int8_torch_model(model).encode_code
        for name, int8 in (("ort-fp32", False), ("ort-int8", True)):
            if name in candidates:
                try:
                    encoders[name] = ort_encoder(model, work, int8)
                except ImportError:
                    print(f"{name}: onnxruntime is not installed; skipped", file=sys.stderr)
        reference = None
        for name in ["fp32"] + [c for c in candidates if c != "fp32" and c in encoders]:
            vectors, wall, cpu = timed(encoders[name], codes)
            if name == "fp32":
                reference = vectors
            cosine = (vectors * reference).sum(1)  # (N,)
            rows.append({"name": name, "threads": n_threads, "functions": len(codes),
                         "functions_per_s": len(codes) / wall, "functions_per_cpu_s": len(codes) / cpu,
                         "cosine_min": float(cosine.min()), "cosine_mean": float(cosine.mean())})
            print(f"{name:>10} threads={n_threads}: {rows[-1]['functions_per_s']:6.1f}/s "
                  f"{rows[-1]['functions_per_cpu_s']:6.1f}/cpu-s cos min {cosine.min():.4f}", flush=True)
    for row in rows:
        before = next(r for r in rows if r["name"] == "before" and r["threads"] == row["threads"])
        row["ratio_wall"] = row["functions_per_s"] / before["functions_per_s"]
        row["ratio_cpu"] = row["functions_per_cpu_s"] / before["functions_per_cpu_s"]
    return rows


def mrr_rows(model: RetrievalModel, groups: int) -> dict:
    from mmssl.data.corpus import load_corpus
    from mmssl.eval.codesearchnet import codesearchnet_groups, codesearchnet_mrr

    records = load_corpus("code", "test")
    picked = torch.cat(codesearchnet_groups(len(records), 1000, seed=0)[:groups]).tolist()
    docstrings = [records[i]["docstring"] for i in picked]
    codes = [records[i]["code"] for i in picked]
    queries = torch.from_numpy(model.encode_text(docstrings))  # (Q, E); queries are short: the same for both
    out = {"groups": groups, "pairs": len(picked), "group_size": 1000, "seed": 0}
    for encoding in ("fp32", "fast"):
        start = time.perf_counter()
        items = torch.from_numpy(model.with_encoding(encoding).encode_code(codes))  # (Q, E)
        metrics = codesearchnet_mrr(queries, items, 1000, seed=None)  # the picked pairs are already grouped
        out[encoding] = {"mrr": metrics["mrr"], "recall@1": metrics["recall@1"], "seconds": time.perf_counter() - start}
        print(f"MRR {encoding}: {metrics['mrr']:.4f}", flush=True)
    out["mrr_difference"] = out["fast"]["mrr"] - out["fp32"]["mrr"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=300, help="test-split functions for the speed rows")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--candidates", default="before,fp32,fast,int8-torch,ort-fp32,ort-int8")
    parser.add_argument("--mrr-groups", type=int, default=1, help="CSN groups of 1000 (0: skip the MRR rows)")
    args = parser.parse_args()
    load = os.getloadavg()
    model = mmssl.load_model(MODEL, device="cpu")
    codes = test_functions(args.sample)
    rows = speed_rows(model, codes, args.candidates.split(","), [int(t) for t in args.threads.split(",")])
    results = {"model": str(MODEL.relative_to(ROOT)), "fingerprint": model.fingerprint,
               "fast_max_length": FAST_MAX_LENGTH, "trained_max_length": model.dual_encoder.item_tower.config.max_length,
               "rows": rows, "load_average_start": load, "cpu": _cpu_flags()}
    if args.mrr_groups:
        torch.set_num_threads(max(int(t) for t in args.threads.split(",")))
        results["mrr"] = mrr_rows(model, args.mrr_groups)
    results["load_average_end"] = os.getloadavg()
    print(f"\n{'row':>10} {'thr':>3} {'fn/s':>7} {'fn/cpu-s':>8} {'x before':>8} {'cos min':>8} {'cos mean':>8}")
    for r in rows:
        print(f"{r['name']:>10} {r['threads']:>3} {r['functions_per_s']:7.1f} {r['functions_per_cpu_s']:8.1f} "
              f"{r['ratio_cpu']:8.2f} {r['cosine_min']:8.4f} {r['cosine_mean']:8.4f}")
    if "mrr" in results:
        m = results["mrr"]
        print(f"MRR ({m['pairs']} pairs, {m['groups']} CSN groups): fp32 {m['fp32']['mrr']:.4f}, "
              f"fast {m['fast']['mrr']:.4f}, difference {m['mrr_difference']:+.4f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, RESULTS)
    print(f"wrote {RESULTS}")


def _cpu_flags() -> dict:
    flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[-1].split("\n", 1)[0] if Path("/proc/cpuinfo").exists() else ""
    return {name: name in flags.split() for name in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")}


if __name__ == "__main__":
    main()
