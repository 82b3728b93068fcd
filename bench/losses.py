"""Benchmark: forward+backward time, peak memory and value of each mmssl loss vs its peer.

Peers: ``pytorch-metric-learning`` (configured to the same definition, see the loss docstrings)
and ``open_clip.loss.ClipLoss``. Batch 256 and 1024, dim 128, 2 CPU threads, one run; prints a
table and writes ``bench/results/losses.json``. Times are the fastest of interleaved repeats;
``ratio`` = ours / peer (goal: <= 1.0) is the median over back-to-back (ours, peer) pairs, which
stays fair when other jobs share the cores (the ratio of the minima is in the JSON too).
Peak memory is the extra CPU memory of one forward+backward, from the torch profiler's
allocation events (inputs excluded).

Usage: ``python bench/losses.py [--sizes 256 1024] [--dim 128] [--min-seconds 1.0]``
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from open_clip.loss import ClipLoss
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning import reducers as pml_reducers
from pytorch_metric_learning import regularizers as pml_regularizers
from torch.profiler import ProfilerActivity, profile

from mmssl.io import write_json
from mmssl.losses import (
    NegativeQueue,
    contrastive_loss,
    generalized_lifted_structure_loss,
    info_nce_loss,
    lifted_structure_loss,
    nce_loss,
    npair_loss,
    nt_xent_loss,
    soft_nearest_neighbour_loss,
    symmetric_info_nce_loss,
    triplet_margin_loss,
)

RESULTS = Path(__file__).resolve().parent / "results" / "losses.json"
PER_CLASS = 4  # labelled batches: B / 4 classes of 4 (P-K sampling)
# pml's LiftedStructureLoss and NTXentLoss build a (positive pairs) x (negative pairs) matrix:
# measured ~21 and ~16 bytes per element at B=256; at B=1024 that is ~64 GiB and ~16 GiB.
PML_BYTES_PER_PAIR_BY_PAIR = 24
QUEUE_SIZE = 4096
NUM_NOISE = 16


@dataclass
class Case:
    """One loss at one batch size: ``ours`` and ``peer`` map fresh leaf inputs to a scalar loss."""

    name: str
    make_inputs: Callable[[], tuple[torch.Tensor, ...]]
    ours: Callable[..., torch.Tensor]
    peer: Callable[..., torch.Tensor] | None
    peer_name: str
    peer_bytes_estimate: float = 0.0  # for peers with cubic memory: skip them past --peer-memory-gib


def unnormalized_lp() -> pml_distances.LpDistance:
    return pml_distances.LpDistance(normalize_embeddings=False)


def cases(batch: int, dim: int) -> list[Case]:
    generator = torch.Generator().manual_seed(batch)
    labels = torch.arange(batch) % (batch // PER_CLASS)
    pair_labels = torch.arange(batch // 2).repeat(2)
    embeddings = torch.randn(batch, dim, generator=generator) * 0.2
    first, second = torch.randn(2, batch, dim, generator=generator)
    first, second = torch.nn.functional.normalize(first, dim=1), torch.nn.functional.normalize(second, dim=1)
    queue = NegativeQueue(dim, QUEUE_SIZE, gather=False)
    queue.enqueue(torch.nn.functional.normalize(torch.randn(QUEUE_SIZE, dim, generator=generator), dim=1))
    data_scores, noise_scores = torch.randn(batch, generator=generator), torch.randn(batch, NUM_NOISE, generator=generator)
    data_log_q = torch.full((batch,), -8.0)
    noise_log_q = torch.full((batch, NUM_NOISE), -8.0)

    def leaf(*tensors):
        return lambda: tuple(t.clone().requires_grad_(True) for t in tensors)

    def labelled(fn):
        return lambda x: fn(x, labels)

    half = batch // 2
    negative_pairs = batch * (batch - PER_CLASS)
    lifted_peer_bytes = PML_BYTES_PER_PAIR_BY_PAIR * batch * (PER_CLASS - 1) * negative_pairs
    nt_xent_peer_bytes = PML_BYTES_PER_PAIR_BY_PAIR * batch * batch * (batch - 2)
    triplet = pml_losses.TripletMarginLoss(margin=0.2, distance=unnormalized_lp(), reducer=pml_reducers.MeanReducer())
    hard_miner = pml_miners.BatchHardMiner(distance=unnormalized_lp())
    semi_hard_miner = pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard", distance=unnormalized_lp())
    contrastive_peer = pml_losses.ContrastiveLoss(
        pos_margin=0, neg_margin=1.0, distance=unnormalized_lp(), reducer=pml_reducers.SumReducer()
    )
    npair_peer = pml_losses.NPairsLoss(
        distance=pml_distances.DotProductSimilarity(normalize_embeddings=False),
        embedding_regularizer=pml_regularizers.LpRegularizer(power=2),
        embedding_reg_weight=0.002,
    )
    lifted_peer = pml_losses.LiftedStructureLoss(neg_margin=1.0, distance=unnormalized_lp())
    generalized_peer = pml_losses.GeneralizedLiftedStructureLoss(neg_margin=1.0, distance=unnormalized_lp())
    nt_xent_peer = pml_losses.NTXentLoss(temperature=0.5)
    clip_peer = ClipLoss()
    scale = torch.tensor(1 / 0.07)
    pml = "pytorch-metric-learning"
    return [
        Case("contrastive (plain, sum)", leaf(embeddings),
             labelled(lambda x, y: contrastive_loss(x, y, margin=1.0, squared=False, reduction="sum")),
             labelled(contrastive_peer), pml + " ContrastiveLoss"),
        Case("triplet all", leaf(embeddings), labelled(lambda x, y: triplet_margin_loss(x, y, 0.2, "all")),
             labelled(triplet), pml + " TripletMarginLoss"),
        Case("triplet hard", leaf(embeddings), labelled(lambda x, y: triplet_margin_loss(x, y, 0.2, "hard")),
             labelled(lambda x, y: triplet(x, y, hard_miner(x, y))), pml + " BatchHardMiner+TripletMarginLoss"),
        Case("triplet semi-hard", leaf(embeddings),
             labelled(lambda x, y: triplet_margin_loss(x, y, 0.2, "semi_hard")),
             labelled(lambda x, y: triplet(x, y, semi_hard_miner(x, y))), pml + " TripletMarginMiner+TripletMarginLoss"),
        Case("n-pair", leaf(embeddings[:half], embeddings[half:]), lambda a, p: npair_loss(a, p, 0.002),
             lambda a, p: npair_peer(torch.cat([a, p]), pair_labels), pml + " NPairsLoss"),
        Case("lifted structure", leaf(embeddings), labelled(lambda x, y: lifted_structure_loss(x, y, 1.0)),
             labelled(lifted_peer), pml + " LiftedStructureLoss", lifted_peer_bytes),
        Case("generalized lifted", leaf(embeddings),
             labelled(lambda x, y: generalized_lifted_structure_loss(x, y, 1.0)),
             labelled(generalized_peer), pml + " GeneralizedLiftedStructureLoss"),
        Case("nt-xent (2N = B)", leaf(embeddings[:half], embeddings[half:]), lambda a, b: nt_xent_loss(a, b, 0.5),
             lambda a, b: nt_xent_peer(torch.cat([a, b]), pair_labels), pml + " NTXentLoss", nt_xent_peer_bytes),
        Case("symmetric infonce", leaf(first, second), lambda a, b: symmetric_info_nce_loss(a, b, 1 / scale),
             lambda a, b: clip_peer(a, b, scale), "open_clip ClipLoss"),
        Case("infonce in-batch", leaf(first, second), lambda q, k: info_nce_loss(q, k, temperature=0.07), None, "-"),
        Case(f"infonce queue K={QUEUE_SIZE}", leaf(first, second),
             lambda q, k: info_nce_loss(q, k, queue.negatives(), temperature=0.07), None, "-"),
        Case("soft nearest neighbour", leaf(embeddings),
             labelled(lambda x, y: soft_nearest_neighbour_loss(x, y, 1.0)), None, "-"),
        Case(f"nce K={NUM_NOISE}", leaf(data_scores, noise_scores),
             lambda d, n: nce_loss(d, n, data_log_q, noise_log_q), None, "-"),
    ]


def forward_backward(fn: Callable[..., torch.Tensor], make_inputs) -> tuple[float, float]:
    """Seconds for one forward+backward (inputs made outside the clock) and the loss value."""
    inputs = make_inputs()
    start = time.perf_counter()
    loss = fn(*inputs)
    loss.backward()
    return time.perf_counter() - start, float(loss.detach())


def time_pair(case: Case, min_seconds: float) -> tuple[list[float], list[float], float, float]:
    """Interleaved timings of ours and the peer (so drift hits both), after one warm-up each.

    At least 10 repeats (3 when one run of the slower side takes over a second), and more until
    ``min_seconds`` have passed.
    """
    warm_up, value = forward_backward(case.ours, case.make_inputs)
    peer_warm_up, peer_value = forward_backward(case.peer, case.make_inputs) if case.peer else (0.0, float("nan"))
    min_repeats = 3 if max(warm_up, peer_warm_up) > 1.0 else 10
    ours, theirs = [], []
    began = time.perf_counter()
    while len(ours) < min_repeats or time.perf_counter() - began < min_seconds:
        ours.append(forward_backward(case.ours, case.make_inputs)[0])
        if case.peer:
            theirs.append(forward_backward(case.peer, case.make_inputs)[0])
        if len(ours) >= 200:
            break
    return ours, theirs, value, peer_value


def peak_memory_bytes(fn: Callable[..., torch.Tensor], make_inputs) -> int:
    """Peak extra CPU memory of one forward+backward, from the profiler's allocation events."""
    inputs = make_inputs()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(*inputs).backward()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--min-seconds", type=float, default=1.0, help="timing budget per case and size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--peer-memory-gib", type=float, default=4.0, help="skip a peer whose estimated memory exceeds this"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_at_start = os.getloadavg()
    logging.getLogger("torch.profiler").setLevel(logging.ERROR)
    rows = []
    header = f"{'loss':<26}{'B':>6}{'ours ms':>10}{'peer ms':>10}{'ratio':>7}{'ours MiB':>10}{'peer MiB':>10}{'rel. diff':>11}  peer"
    print(header)
    print("-" * len(header))
    for batch in args.sizes:
        for case in cases(batch, args.dim):
            skipped = None
            if case.peer_bytes_estimate > args.peer_memory_gib * 2**30:
                skipped = f"peer skipped: needs ~{case.peer_bytes_estimate / 2**30:.0f} GiB"
                case.peer_name, case.peer = f"{case.peer_name} ({skipped})", None
            ours, theirs, value, peer_value = time_pair(case, args.min_seconds)
            # Times: the least disturbed run (shared CPUs). Ratio: median of the ratios of
            # back-to-back pairs, so a burst of load from other jobs hits both sides of a pair.
            ours_ms = 1e3 * min(ours)
            peer_ms = 1e3 * min(theirs) if theirs else None
            paired_ratio = statistics.median(o / t for o, t in zip(ours, theirs)) if theirs else None
            ours_mem = peak_memory_bytes(case.ours, case.make_inputs) / 2**20
            peer_mem = peak_memory_bytes(case.peer, case.make_inputs) / 2**20 if case.peer else None
            row = {
                "loss": case.name,
                "batch": batch,
                "dim": args.dim,
                "ours_ms": ours_ms,
                "peer_ms": peer_ms,
                "time_ratio": paired_ratio,
                "min_time_ratio": ours_ms / peer_ms if peer_ms else None,
                "ours_peak_mib": ours_mem,
                "peer_peak_mib": peer_mem,
                "ours_value": value,
                "peer_value": peer_value if case.peer else None,
                "abs_value_diff": abs(value - peer_value) if case.peer else None,
                "rel_value_diff": abs(value - peer_value) / max(abs(peer_value), 1e-30) if case.peer else None,
                "peer": case.peer_name,
                "peer_skipped": skipped,
                "ours_median_ms": 1e3 * statistics.median(ours),
                "peer_median_ms": 1e3 * statistics.median(theirs) if theirs else None,
                "repeats": len(ours),
            }
            rows.append(row)

            def show(x, fmt):
                return format(x, fmt) if x is not None else "-"

            print(
                f"{case.name:<26}{batch:>6}{ours_ms:>10.2f}{show(peer_ms, '>10.2f'):>10}"
                f"{show(row['time_ratio'], '>7.2f'):>7}{ours_mem:>10.1f}{show(peer_mem, '>10.1f'):>10}"
                f"{show(row['rel_value_diff'], '>11.1e'):>11}  {case.peer_name}",
                flush=True,
            )
    result = {
        "config": {"sizes": args.sizes, "dim": args.dim, "threads": args.threads, "dtype": "float32",
                   "labels": f"B/{PER_CLASS} classes of {PER_CLASS}", "timing": "min over interleaved repeats of forward+backward (median also stored)"},
        "environment": {"torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "load_average_at_start": load_at_start,
                        "load_average_at_end": os.getloadavg()},
        "results": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.output, result, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
