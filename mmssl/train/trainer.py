"""One trainer for every method: pretext tasks, unimodal contrastive methods and dual encoders.

A *method* is an ``nn.Module`` with ``loss(batch) -> (loss, logs)`` (``logs``: floats to record)
and an ``encoder`` to export; an optional ``on_step_start(trainer)`` runs before each optimizer
step (periodic work such as re-clustering). The trainer owns everything else: device and precision, the
resumable data order, gradient accumulation, AdamW with warmup + cosine, gradient clipping,
checkpoints, metrics and curves, and DistributedDataParallel when launched by ``torchrun``.

Scaling options (``TrainConfig``): ``grad_cache_chunk`` trains a two-tower contrastive method on
big batches in chunk-sized memory (:mod:`mmssl.train.gradcache`, exact gradients);
``channels_last`` stores conv weights and image batches NHWC (``auto``: on CUDA for methods with
conv layers; the ResNet image tower is faster with it on CPU too (README), where the CLIP
recipe turns it on); ``compile`` runs the loss through ``torch.compile``. Under torchrun only rank 0 logs and
writes files, and a run resumes on any number of processes (:func:`resume_start`).

Exact resume: the data order is a function of (seed, epoch) and each sample's augmentation RNG a
function of (seed, epoch, index) (see :mod:`mmssl.train.sampler`); the checkpoint carries the
optimizer, scheduler and RNG states. A run killed at any point and resumed from its last
checkpoint ends at the same weights as one that was never interrupted.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from mmssl.checkpoint import (CheckpointError, latest_checkpoint, load_checkpoint, prune_checkpoints, save_checkpoint,
                              set_rng_state, write_latest)
from mmssl.config import save_config, to_dict
from mmssl.distributed import average_gradients, broadcast_object, broadcast_parameters, init_distributed
from mmssl.kinds import UNNAMED_CHECKPOINT
from mmssl.train.config import TrainConfig
from mmssl.train.curves import plot_curves, write_metrics_csv
from mmssl.train.gradcache import GradCache
from mmssl.train.sampler import GroupedSampler, ResumableSampler, SeededSamples, SourceShareSampler, parse_shares


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present (this process's local rank under torchrun), else CPU."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} requested but CUDA is not available; use --device cpu or auto")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting, or None for full fp32."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def move_to(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move every tensor of a (nested) batch to ``device`` (4-D float tensors NHWC if ``channels_last``)."""
    if torch.is_tensor(batch):
        if channels_last and batch.ndim == 4 and batch.is_floating_point():
            return batch.to(device, non_blocking=True, memory_format=torch.channels_last)
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device, channels_last) for v in batch)
    return batch


def use_channels_last(setting: str, method: nn.Module, device: torch.device) -> bool:
    """``auto``: NHWC on CUDA when the method has 2-D convolutions (cuDNN's fast path); ``on``/``off`` force it.

    On CPU ``auto`` stays NCHW, as a method that ``view``s conv outputs in ways NHWC strides forbid would
    break; the ResNet image tower trains faster with it on CPU too (README), so the CLIP recipe sets ``on``.
    """
    if setting == "auto":
        return device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in method.modules())
    return setting == "on"


def resume_start(step: int, num_samples: int, samples_per_step: int, old_world: int, new_world: int) -> int:
    """Samples each of ``new_world`` ranks has consumed after ``step`` steps run on ``old_world`` ranks.

    The epoch order is the same permutation for any world size (:class:`ResumableSampler`); ranks
    take interleaved positions of it. ``step`` steps of ``samples_per_step`` per rank took every
    position below ``offset * old_world`` of the current epoch, so the new ranks continue from
    there (to within ``new_world - 1`` positions when that does not divide evenly).
    """
    old_per_rank, new_per_rank = -(-num_samples // old_world), -(-num_samples // new_world)
    epoch, offset = divmod(step * samples_per_step, old_per_rank)
    position = offset * old_world  # positions of the epoch's permutation already taken, all ranks together
    if position >= num_samples:  # only the old world's padding was left in this epoch
        epoch, position = epoch + 1, 0
    return epoch * new_per_rank + position // new_world


def cosine_with_warmup(step: int, warmup: int, total: int, min_ratio: float, time_progress: float = 0.0) -> float:
    """LR multiplier: linear warmup from 0 to 1 over ``warmup`` steps, cosine to ``min_ratio`` at ``total``.

    ``time_progress``: the share of a time budget spent; the cosine is as far as the steps or it, whichever
    is further, so a run stopped by its time budget ends decayed too."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_progress))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class FitStats:
    """What one :meth:`Trainer.fit` call did: steps it ran (not counting resumed ones), its wall time
    (checkpoints included) and the samples of every process."""

    steps: int = 0
    seconds: float = 0.0
    samples: int = 0

    @property
    def samples_per_s(self) -> float:
        return self.samples / max(self.seconds, 1e-9)


class _LossForward(nn.Module):
    """Lets DistributedDataParallel hook ``method.loss`` (DDP only wraps ``forward``)."""

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method

    def forward(self, batch):
        return self.method.loss(batch)


class Trainer:
    """Train ``method`` on ``dataset`` (map-style) batched by ``collate_fn``.

    Args:
        config: optimisation settings; ``config.run_dir`` receives ``config.json``,
            ``checkpoints/``, ``metrics.jsonl``, ``metrics.csv`` and ``curves.png``.
        method: module with ``loss(batch) -> (loss, logs)``.
        dataset: map-style dataset; samples may use torch/numpy/random RNGs for augmentation.
        collate_fn: turns a list of samples into a batch (default: torch's).
        extra_config: more dataclass configs saved beside the trainer's (model, data, ...).
        kind: written into checkpoints so loaders can reject checkpoints of another kind.
    """

    def __init__(self, config: TrainConfig, method: nn.Module, dataset, collate_fn: Callable | None = None,
                 extra_config: dict | None = None, kind: str = UNNAMED_CHECKPOINT):
        if config.grad_accum < 1 or config.batch_size < 1 or config.max_steps < 1:
            raise ValueError("batch_size, grad_accum and max_steps must all be >= 1")
        if config.max_seconds < 0:
            raise ValueError(f"train.max_seconds must be 0 (no time budget) or > 0, got {config.max_seconds}")
        if config.budget_clock not in ("wall", "cpu"):
            raise ValueError(f"train.budget_clock must be 'wall' or 'cpu', got {config.budget_clock!r}")
        if config.grad_cache_chunk < 0:
            raise ValueError(f"grad_cache_chunk must be 0 (off) or a chunk size >= 1, got {config.grad_cache_chunk}")
        if len(dataset) == 0:
            raise ValueError("the training dataset is empty; build the corpus first (python -m mmssl data build)")
        self.config, self.method, self.dataset, self.collate_fn = config, method, dataset, collate_fn
        self.extra_config, self.kind = extra_config or {}, kind
        self.device = resolve_device(config.device)
        world = init_distributed(self.device)
        self.rank, self.world_size = world.rank, world.world_size
        self.amp_dtype = autocast_dtype(config.precision, self.device)
        self.run_dir = Path(config.run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.channels_last = use_channels_last(config.channels_last, method, self.device)
        self.method.to(self.device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        self.grad_cache = GradCache(self.method, config.grad_cache_chunk) if config.grad_cache_chunk > 0 else None
        self.model = _LossForward(self.method)
        if self.world_size > 1 and self.grad_cache is None:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
        elif self.world_size > 1:  # GradCache runs several backward passes a step: average once, by hand
            broadcast_parameters(self.method)
        if config.compile:
            if self.grad_cache is not None:
                raise ValueError("train.compile and train.grad_cache_chunk cannot be combined yet; "
                                 "turn one of them off")
            self.model = torch.compile(self.model)
        self._start = 0  # samples this rank has consumed (the sampler's start); set by resume
        self.optimizer = self._make_optimizer()
        self.train_seconds = 0.0  # optimisation seconds so far, resumed runs included (the time budget's clock)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype is torch.float16)
        self.step = 0
        self.fit_stats = FitStats()  # filled by fit()
        self.is_main = self.rank == 0

    # -- set-up -------------------------------------------------------------------------------
    def _lr_factor(self, step: int) -> float:
        c = self.config
        spent = self.train_seconds / c.max_seconds if c.max_seconds > 0 else 0.0
        return cosine_with_warmup(step, c.warmup_steps, c.max_steps, c.min_lr_ratio, spent)

    def _out_of_time(self) -> bool:
        return 0 < self.config.max_seconds <= self.train_seconds

    def _budget_now(self) -> float:
        """The time budget's clock: wall seconds, or this process's CPU seconds (``budget_clock="cpu"``)."""
        return time.process_time() if self.config.budget_clock == "cpu" else time.perf_counter()

    def _make_optimizer(self) -> torch.optim.Optimizer:
        """AdamW; no weight decay on biases, norms, embeddings' scales and logit scales (ndim < 2)."""
        decay, no_decay = [], []
        for p in self.method.parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": self.config.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        fused = self.device.type == "cuda"
        return torch.optim.AdamW(groups, lr=self.config.lr, betas=tuple(self.config.betas), fused=fused)

    def _loader(self) -> DataLoader:
        c = self.config
        sampler = self._sampler()
        return DataLoader(SeededSamples(self.dataset, c.seed), batch_size=c.batch_size, sampler=sampler,
                          collate_fn=self.collate_fn, num_workers=c.num_workers,
                          # its own generator: creating the iterator must not consume the global
                          # RNG, or a resumed run's dropout stream would shift
                          generator=torch.Generator().manual_seed(c.seed),
                          pin_memory=self.device.type == "cuda", persistent_workers=c.num_workers > 0)

    def _sampler(self) -> ResumableSampler:
        """Uniform batches, or (``groups_per_batch`` > 0) batches from few of the dataset's ``groups``, or
        (``source_shares``) batches holding fixed shares of the dataset's ``sources``."""
        c = self.config
        if c.source_shares:
            if c.groups_per_batch > 0:
                raise ValueError("train.source_shares and train.groups_per_batch cannot be combined; set one")
            sources = getattr(self.dataset, "sources", None)
            if sources is None:
                raise ValueError(f"train.source_shares needs a dataset with a `sources` list (one corpus per "
                                 f"sample); {type(self.dataset).__name__} has none: leave it empty")
            return SourceShareSampler(list(sources), parse_shares(c.source_shares), seed=c.seed, start=self._start,
                                      rank=self.rank, world_size=self.world_size)
        if c.groups_per_batch <= 0:
            return ResumableSampler(len(self.dataset), seed=c.seed, start=self._start, rank=self.rank,
                                    world_size=self.world_size)
        groups = getattr(self.dataset, "groups", None)
        if groups is None:
            raise ValueError(f"train.groups_per_batch={c.groups_per_batch} needs a dataset with a `groups` list "
                             f"(one name per sample); {type(self.dataset).__name__} has none: set it to 0")
        return GroupedSampler(list(groups), c.batch_size, c.groups_per_batch, seed=c.seed, start=self._start,
                              rank=self.rank, world_size=self.world_size)

    def _maybe_resume(self) -> None:
        folder = latest_checkpoint(self.ckpt_dir)
        if folder is None:
            if self.is_main:
                print(f"[mmssl] --resume: no checkpoint in {self.ckpt_dir}; starting from step 0")
            return
        model_state, optimizer_state, state = load_checkpoint(folder)
        if state.get("kind") != self.kind:
            raise CheckpointError(f"{folder} holds a {state.get('kind')!r} checkpoint, this run trains {self.kind!r}")
        self.method.load_state_dict(model_state)
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self._start = self._resumed_start(state)
        from safetensors.torch import load_file

        set_rng_state(load_file(str(folder / "rng.safetensors")), state["rng"])
        self._truncate_metrics(self.step)
        if self.is_main:
            print(f"[mmssl] resumed from {folder} at step {self.step}")

    @property
    def global_batch_size(self) -> int:
        """Samples per optimizer step over every process: ``batch_size * grad_accum * world_size``."""
        return self.config.batch_size * self.config.grad_accum * self.world_size

    def _resumed_start(self, state: dict) -> int:
        """This rank's sampler start after resuming ``state``, saved by a run of any world size."""
        c = self.config
        old_world = int(state.get("world_size", 1))
        saved = state.get("config", {})
        old_per_rank = int(saved.get("batch_size", c.batch_size)) * int(saved.get("grad_accum", c.grad_accum))
        old_global, new_global = old_per_rank * old_world, self.global_batch_size
        if self.is_main and (old_world, old_global) != (self.world_size, new_global):
            print(f"[mmssl] resuming a run of {old_world} process(es) on {self.world_size}: the data order continues "
                  f"where it stopped; samples per optimizer step {old_global} -> {new_global}"
                  + ("" if old_global == new_global else
                     f" (set train.batch_size to {old_global // (c.grad_accum * self.world_size)} to keep it)"))
        return resume_start(self.step, len(self.dataset), old_per_rank, old_world, self.world_size)

    # -- logging and checkpoints ----------------------------------------------------------------
    def _truncate_metrics(self, step: int) -> None:
        """Drop rows logged after ``step`` (by the interrupted run) so curves stay consistent."""
        path = self.run_dir / "metrics.jsonl"
        if not self.is_main or not path.exists():
            return
        rows = [line for line in path.read_text().splitlines() if line.strip()]
        kept = []
        for line in rows:
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError):  # a line cut by the kill
                continue
        path.write_text("".join(r + "\n" for r in kept))

    def _log(self, row: dict) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def save(self) -> Path | None:
        """Checkpoint now (rank 0 only); returns the folder."""
        if not self.is_main:
            return None
        name = f"step_{self.step:07d}"
        state = {"kind": self.kind, "step": self.step, "scheduler": self.scheduler.state_dict(),
                 "config": to_dict(self.config), "extra_config": {k: to_dict(v) if hasattr(v, "__dataclass_fields__")
                                                                 else v for k, v in self.extra_config.items()},
                 "world_size": self.world_size, "torch": torch.__version__,
                 "train_seconds": self.train_seconds}
        folder = save_checkpoint(self.ckpt_dir / name, self.method.state_dict(), self.optimizer.state_dict(), state)
        write_latest(self.ckpt_dir, name)
        prune_checkpoints(self.ckpt_dir, self.config.keep_checkpoints)
        rows = [json.loads(line) for line in (self.run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()] \
            if (self.run_dir / "metrics.jsonl").exists() else []
        write_metrics_csv(rows, self.run_dir / "metrics.csv")
        plot_curves(rows, self.run_dir / "curves.png", title=self.run_dir.name)
        return folder

    # -- the loop -------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train to ``config.max_steps`` (resuming first if asked); returns the last logged row."""
        c = self.config
        if self.is_main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            save_config(c, self.run_dir / "config.json")
            for name, cfg in self.extra_config.items():
                if hasattr(cfg, "__dataclass_fields__"):
                    save_config(cfg, self.run_dir / f"{name}.json")
        if c.resume:
            self._maybe_resume()
        elif (self.run_dir / "metrics.jsonl").exists() and self.is_main:
            (self.run_dir / "metrics.jsonl").unlink()  # a fresh run replaces the old curves
        self.fit_stats = FitStats()
        if self.step >= c.max_steps or self._out_of_time():
            return {"step": self.step}
        first_step, started, seconds_before = self.step, time.perf_counter(), self.train_seconds
        budget_started = self._budget_now()
        batches = iter(self._loader())
        self.method.train()
        last: dict = {}
        window_t, window_samples = time.perf_counter(), 0
        progress = None
        if c.progress and self.is_main:
            from tqdm.auto import tqdm

            progress = tqdm(total=c.max_steps, initial=self.step, desc=self.run_dir.name, unit="step", dynamic_ncols=True)
        sums: dict[str, float] = {}
        count = 0
        while self.step < c.max_steps and not self._out_of_time():
            if hasattr(self.method, "on_step_start"):  # e.g. DeepCluster re-clusters every N steps
                self.method.on_step_start(self)
            self.optimizer.zero_grad(set_to_none=True)
            step_logs: dict[str, float] = {}
            for micro in range(c.grad_accum):
                batch = move_to(next(batches), self.device, self.channels_last)
                sync = micro == c.grad_accum - 1 or not hasattr(self.model, "no_sync")
                ctx = contextlib.nullcontext() if sync else self.model.no_sync()
                with ctx:
                    with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                        loss, logs = self.grad_cache.forward(batch) if self.grad_cache else self.model(batch)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"loss became {loss.item()} at step {self.step}; "
                                                 "lower the learning rate or check the inputs")
                    scaled = self.scaler.scale(loss / c.grad_accum)
                    self.grad_cache.backward(scaled) if self.grad_cache else scaled.backward()
                step_logs["loss"] = step_logs.get("loss", 0.0) + loss.item() / c.grad_accum
                for k, v in logs.items():
                    step_logs[k] = step_logs.get(k, 0.0) + float(v) / c.grad_accum
                window_samples += _batch_len(batch)
            if self.grad_cache is not None:
                average_gradients(self.method.parameters())  # DDP's all-reduce (no-op on one process)
            if c.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                step_logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.method.parameters(), c.grad_clip))
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.train_seconds = seconds_before + self._budget_now() - budget_started  # before the next step's LR
            if c.max_seconds > 0 and self.world_size > 1:  # every rank stops at the same step: rank 0's clock
                self.train_seconds = broadcast_object(self.train_seconds)
            self.scheduler.step()
            self.step += 1
            done = self.step >= c.max_steps or self._out_of_time()
            for k, v in step_logs.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{step_logs['loss']:.4f}")
            if self.is_main and (self.step % c.log_every == 0 or done):
                now = time.perf_counter()
                last = {"step": self.step, "lr": self.scheduler.get_last_lr()[0],
                        **{k: v / count for k, v in sums.items()},
                        "samples_per_s": window_samples * self.world_size / max(now - window_t, 1e-9)}
                self._log(last)
                sums, count, window_t, window_samples = {}, 0, now, 0
            if self.step % c.checkpoint_every == 0 or done:
                t0 = time.perf_counter()
                self.save()
                window_t += time.perf_counter() - t0  # throughput excludes checkpoint time
        if progress is not None:
            progress.close()
        steps = self.step - first_step
        self.fit_stats = FitStats(steps, time.perf_counter() - started, steps * self.global_batch_size)
        return last


def _batch_len(batch: Any) -> int:
    """Number of samples in a batch: the leading size of its first tensor."""
    if torch.is_tensor(batch):
        return batch.shape[0]
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for v in batch:
            n = _batch_len(v)
            if n:
                return n
    return 0
