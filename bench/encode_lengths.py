"""Benchmark: CodeSearchNet-protocol MRR of models/code-default when its code tower truncates at
256 (as trained), 192, 160 or 128 tokens: how FAST_MAX_LENGTH (mmssl.model) was chosen.

Pairs: the first 2 of the test split's 5 protocol groups (groups of 1000, seed 0), each scored as
the full eval scores it. Queries are encoded once (fp32). A function of at most L tokens embeds
the same at every cap >= L, so each shorter cap re-encodes only the functions longer than it.
Prints one line per cap; about 50 minutes on 2 busy cores.

Usage: ``python bench/encode_lengths.py``
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mmssl  # noqa: E402
from mmssl.data.corpus import load_corpus  # noqa: E402
from mmssl.eval.codesearchnet import codesearchnet_groups, codesearchnet_mrr  # noqa: E402

GROUPS, CAPS = 2, (192, 160, 128)


def main() -> None:
    records = load_corpus("code", "test")
    picked = torch.cat(codesearchnet_groups(len(records), 1000, seed=0)[:GROUPS]).tolist()
    docs = [records[i]["docstring"] for i in picked]
    codes = [records[i]["code"] for i in picked]
    model = mmssl.load_model(ROOT / "models" / "code-default", device="cpu")
    queries = torch.from_numpy(model.encode_text(docs))  # (Q, E)
    tower, projection = model.dual_encoder.item_tower, model.dual_encoder.item_projection
    lengths = np.array([len(x) for x in tower.hf_tokenizer([c[:256 * 32] for c in codes], truncation=True,
                                                           max_length=4096)["input_ids"]])  # (Q,)

    def encode(rows: list[int], cap: int) -> dict[int, np.ndarray]:
        rows, out = sorted(rows, key=lambda i: lengths[i]), {}
        with torch.inference_mode():
            for start in range(0, len(rows), 16):
                batch = rows[start:start + 16]
                vectors = projection(tower(tower.tokenize([codes[i] for i in batch], max_length=cap))).numpy()
                out.update(zip(batch, vectors))
        return out

    start = time.time()
    full = encode(list(range(len(codes))), 256)
    base = np.stack([full[i] for i in range(len(codes))])  # (Q, E)
    results = {256: (base, time.time() - start)}
    for cap in CAPS:
        start, emb = time.time(), base.copy()
        for i, vector in encode([i for i in range(len(codes)) if lengths[i] > cap], cap).items():
            emb[i] = vector
        results[cap] = (emb, time.time() - start)
    rows = []
    for cap, (emb, seconds) in sorted(results.items()):
        metrics = codesearchnet_mrr(queries, torch.from_numpy(emb), 1000, seed=None)
        unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        cosine = (unit * (base / np.linalg.norm(base, axis=1, keepdims=True))).sum(1)
        rows.append({"max_length": cap, "mrr": metrics["mrr"], "recall@1": metrics["recall@1"],
                     "cosine_to_256_min": float(cosine.min()), "cosine_to_256_mean": float(cosine.mean()),
                     "truncated": int((lengths > cap).sum()), "seconds": seconds})
        print(f"L={cap}: MRR {metrics['mrr']:.4f}  R@1 {metrics['recall@1']:.4f}  cos-to-256 min {cosine.min():.4f} "
              f"mean {cosine.mean():.4f}", flush=True)
    out = ROOT / "bench" / "results" / "encode_lengths.json"
    out.write_text(json.dumps({"pairs": len(picked), "groups": GROUPS, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
