"""The trainer's typed config (see :mod:`mmssl.config` for loading and flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class TrainConfig:
    """How to optimise; what to optimise (model, data) is the caller's.

    ``batch_size`` is per process and per micro-batch; one optimizer step sees
    ``batch_size * grad_accum * world_size`` samples.
    """

    run_dir: str = "runs/default"
    max_steps: int = 1000
    batch_size: int = 128
    grad_accum: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.1
    betas: tuple[float, ...] = (0.9, 0.98)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    num_workers: int = 0
    resume: bool = False
    progress: bool = True
    grad_cache_chunk: int = 0  # > 0: GradCache, embed the batch in chunks of this many rows (exact gradients)
    channels_last: Literal["auto", "on", "off"] = "auto"  # NHWC conv weights/images; auto: on CUDA if any Conv2d
    # > 0: each batch from about this many groups (the dataset's ``groups``: hard in-batch negatives, see
    # mmssl.train.sampler.GroupedSampler); 0: uniform batches
    groups_per_batch: int = 0
    # > 0: stop after this many seconds of optimisation (checkpoints included, summed over resumes) even before
    # max_steps, the cosine following whichever of steps and seconds runs out first: equal compute as equal time
    max_seconds: float = 0.0
    # what max_seconds counts: "wall" seconds, or "cpu" seconds of this process (all its threads; equal
    # compute on a shared machine, where wall seconds buy whatever the other jobs leave)
    budget_clock: Literal["wall", "cpu"] = "wall"
    # NAME=SHARE items: each epoch (so each batch, on average) holds that share of the dataset's ``sources`` NAME
    # (its corpus; mmssl.train.sampler.SourceShareSampler); unlisted sources split the rest by size
    source_shares: list[str] = field(default_factory=list)
    compile: bool = False  # torch.compile the loss (CUDA mostly; first steps are slow while it compiles)
