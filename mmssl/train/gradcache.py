"""Gradient caching: the gradients of one big contrastive batch, in the memory of a small one.

GradCache (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited
Setup"). A contrastive loss couples every pair of the batch, so plain gradient accumulation over
micro-batches changes the loss (fewer negatives). But the loss only sees the towers through the
(B, E) embeddings, so its gradient factors through them:

    dL/dθ = Σ_i (dL/de_i) · (de_i/dθ)

1. embed the batch chunk by chunk **without** a graph (activation memory of one chunk), recording
   each chunk's RNG state;
2. compute the loss on the full (B, E) embeddings, detached leaves, and backpropagate it: this
   gives dL/de (B, E) and the gradients of the loss's own parameters (the logit scale);
3. re-run each chunk **with** a graph, under the RNG state recorded for it (same dropout masks),
   and backpropagate its slice of dL/de into the tower parameters.

The result equals one backward pass through the whole batch computed with those dropout masks
(tested to 1e-12 in float64) as long as each embedding row depends only on its own sample. Towers
with BatchNorm in training mode break that: each chunk is normalised with its own statistics
(ghost batch norm) — a warning says so — and their running statistics are restored after step 1
so they are updated once per re-run chunk, not twice.

A side whose inputs are cheap, such as precomputed features of a locked tower followed by a
projection, is embedded once with its graph on the whole batch and never re-run.

Methods opt in with four members (:class:`~mmssl.encoders.DualEncoder` has them):

* ``sides``: the names of the towers, e.g. ``("query", "item")``;
* ``embed_side(batch, side) -> (B, E)``: one side's embeddings;
* ``loss_from_embeddings(*embeddings) -> (loss, logs)``: the loss of the sides' embeddings, in
  ``sides`` order (``loss(batch)`` must equal it on ``embed_side`` of every side);
* ``cheap_side(batch, side) -> bool`` (optional): embed this side once, with its graph.

Under torchrun the loss gathers the global batch as usual (the gather's backward runs in step 2
on every rank at once), and the caller averages parameter gradients over ranks after step 3
(:func:`mmssl.distributed.average_gradients`), as DDP would.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

REQUIRED_MEMBERS = ("sides", "embed_side", "loss_from_embeddings")


def supports_grad_cache(method: nn.Module) -> bool:
    """True when ``method`` has the members GradCache needs (see the module docstring)."""
    return all(hasattr(method, name) for name in REQUIRED_MEMBERS)


def split_batch(batch: Any, chunk_size: int) -> list[Any]:
    """Split every tensor of a (nested dict/list/tuple) batch into chunks of ``chunk_size`` rows.

    Non-tensor leaves are shared by every chunk. All tensors must have the same leading size.
    """
    size = batch_size_of(batch)
    starts = range(0, size, chunk_size)

    def take(value, start):
        if torch.is_tensor(value):
            return value[start:start + chunk_size]
        if isinstance(value, dict):
            return {k: take(v, start) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(take(v, start) for v in value)
        return value

    return [take(batch, start) for start in starts]


def batch_size_of(batch: Any) -> int:
    """The common leading size of every tensor in ``batch``; ValueError if they differ or there are none."""
    sizes = set()

    def visit(value):
        if torch.is_tensor(value):
            sizes.add(value.shape[0] if value.ndim else None)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)

    visit(batch)
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"cannot split a batch into chunks: its tensors' leading sizes are {sorted(map(str, sizes))}; "
                         "gradient caching needs every tensor of the batch to hold one row per sample")
    return sizes.pop()


class RandomState:
    """The CPU RNG state and, when given, one CUDA device's: captured now, restored later."""

    def __init__(self, device: torch.device):
        self.cpu = torch.get_rng_state()
        self.device = device if device.type == "cuda" else None
        self.cuda = torch.cuda.get_rng_state(device) if self.device is not None else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.device is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def _has_training_batch_norm(method: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in method.modules())


class GradCache:
    """Exact large-batch gradients for a two-tower contrastive ``method`` in chunks of ``chunk_size``.

    Use in place of ``loss, logs = method.loss(batch); loss.backward()``::

        cache = GradCache(method, chunk_size=32)
        loss, logs = cache.forward(batch)      # under autocast if training in bf16
        cache.backward(loss)                   # or cache.backward(scaler.scale(loss / accum))

    ``backward`` re-runs the towers under the autocast settings ``forward`` saw. Peak activation
    memory is that of one chunk plus the (B, E) embeddings and the loss's (B, B) logits.
    """

    def __init__(self, method: nn.Module, chunk_size: int):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if not supports_grad_cache(method):
            missing = [name for name in REQUIRED_MEMBERS if not hasattr(method, name)]
            raise TypeError(f"gradient caching needs a two-tower method with {', '.join(REQUIRED_MEMBERS)}; "
                            f"{type(method).__name__} lacks {', '.join(missing)} (e.g. mmssl.encoders.DualEncoder "
                            "has them); turn train.grad_cache_chunk off (0) for this method")
        self.method, self.chunk_size = method, chunk_size
        self._pending: dict | None = None
        self._warned_batch_norm = False

    def _cheap(self, batch: Any, side: str) -> bool:
        cheap_side = getattr(self.method, "cheap_side", None)
        return bool(cheap_side(batch, side)) if cheap_side is not None else False

    def _device(self) -> torch.device:
        for p in self.method.parameters():
            return p.device
        return torch.device("cpu")

    def forward(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Steps 1 and 2 up to the loss: returns ``(loss, logs)``; the loss's graph ends at the embeddings."""
        if self._pending is not None:
            raise RuntimeError("GradCache.forward called twice without backward in between")
        method, sides = self.method, tuple(self.method.sides)
        if method.training and _has_training_batch_norm(method) and not self._warned_batch_norm:
            warnings.warn(f"{type(method).__name__} has BatchNorm layers in training mode: with gradient caching "
                          f"each chunk of {self.chunk_size} is normalised with its own statistics (ghost batch "
                          "norm), so gradients are close to, not equal to, those of the whole batch", stacklevel=2)
            self._warned_batch_norm = True
        device = self._device()
        rerun = [side for side in sides if not self._cheap(batch, side)]
        chunks = split_batch(batch, self.chunk_size) if rerun else []
        buffers = [(b, b.detach().clone()) for b in method.buffers()]
        states, pieces = [], {side: [] for side in rerun}
        with torch.no_grad():
            for chunk in chunks:
                states.append(RandomState(device))
                for side in rerun:
                    pieces[side].append(method.embed_side(chunk, side))  # (b, E)
        with torch.no_grad():
            for buffer, saved in buffers:  # running statistics are updated by the re-run only
                buffer.copy_(saved)
        embeddings, leaves = [], {}
        for side in sides:
            if side in pieces:
                leaves[side] = torch.cat(pieces[side]).detach().requires_grad_()  # (B, E)
                embeddings.append(leaves[side])
            else:
                embeddings.append(method.embed_side(batch, side))  # (B, E), with its graph
        loss, logs = method.loss_from_embeddings(*embeddings)
        self._pending = {"chunks": chunks, "states": states, "leaves": leaves, "after": RandomState(device),
                         "autocast": (device.type, torch.is_autocast_enabled(device.type),
                                      torch.get_autocast_dtype(device.type))}
        return loss, logs

    def backward(self, loss: torch.Tensor) -> None:
        """Step 2's backward (``loss`` is what :meth:`forward` returned, possibly scaled) and step 3."""
        if self._pending is None:
            raise RuntimeError("GradCache.backward called without a forward")
        pending, self._pending = self._pending, None
        loss.backward()
        leaves = pending["leaves"]
        grads = {side: leaf.grad.split(self.chunk_size) if leaf.grad is not None else None
                 for side, leaf in leaves.items()}  # per side: chunks of (b, E)
        device_type, enabled, dtype = pending["autocast"]
        with torch.autocast(device_type, dtype=dtype, enabled=enabled):
            for i, (chunk, state) in enumerate(zip(pending["chunks"], pending["states"])):
                state.restore()  # the dropout masks of step 1
                outputs, output_grads = [], []
                for side in leaves:
                    embedding = self.method.embed_side(chunk, side)  # (b, E), with its graph
                    if grads[side] is not None and embedding.requires_grad:
                        outputs.append(embedding)
                        output_grads.append(grads[side][i].to(embedding.dtype))
                if outputs:
                    torch.autograd.backward(outputs, output_grads)
        pending["after"].restore()  # continue the RNG stream where the first pass left it
