"""The tower contract every encoder follows, its typed config, locking, and initialisation.

A *tower* maps one modality to a feature vector:

* ``output_dim``: int, the feature size;
* ``forward(inputs) -> (B, output_dim)`` float features, where ``inputs`` is what the tower's
  own preprocessing produces: image towers take a (B, 3, H, W) tensor made by ``transform(train)``;
  sequence towers (captions, queries, code) take the dict of tensors made by ``tokenize(texts)``;
* ``prepare(raw_items) -> inputs``: a list of PIL images or strings to a model-ready batch (eval
  preprocessing), so callers can encode raw data without knowing the tower;
* ``encode(raw_items, batch_size)``: features of a whole list, in eval mode without gradients.

Every tower is built from a :class:`TowerConfig` by a factory in :data:`mmssl.encoders.TOWERS`.
``pretrained`` is ``"scratch"``, ``"minilm"`` (the MiniLM tower only), ``"source"`` (the
``hf-text`` tower: the weights of its ``source`` folder), ``open_clip:ARCH:FILE`` (open_clip image
towers: a local weights file) or a path to an mmssl
pretext/contrastive checkpoint whose method holds the tower at ``.encoder``: the checkpoint's
``encoder.*`` tensors of ``model.safetensors`` initialise the tower. ``locked`` freezes it (LiT).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from mmssl.checkpoint import CheckpointError, latest_checkpoint
from mmssl.io import recover_folder

ENCODER_PREFIX = "encoder."


@dataclass
class TowerConfig:
    """One tower. ``width``…``pooling`` shape the code towers; open_clip towers take their shape
    from their JSON model config and MiniLM from its package, and ignore them."""

    name: str = "nbow"  # key of mmssl.encoders.TOWERS
    pretrained: str = "scratch"  # "scratch" | "minilm" | path to an mmssl checkpoint (folder, run dir or .safetensors)
    locked: bool = False  # LiT: frozen weights, eval mode, no gradients
    max_length: int = 128  # tokens per sequence (text/code towers); longer inputs are truncated
    tokenizer: str = ""  # code towers: path to a code tokenizer JSON ("" = pass one to build_tower)
    width: int = 256
    layers: int = 2
    heads: int = 4
    dropout: float = 0.1
    kernel_size: int = 5  # 1D-CNN
    pooling: Literal["mean", "max", "attention"] = "mean"
    hflip: bool = True  # image towers: random horizontal flip in the train transform
    frozen_layers: int = 0  # minilm: freeze the embeddings + first N of its 6 layers (partial fine-tuning)
    source: str = ""  # hf-text: a local Hugging Face / sentence-transformers folder (config, tokenizer, weights)


class Tower(nn.Module):
    """Base class: holds the config and implements locking and batched encoding."""

    modality: ClassVar[Literal["image", "text"]]  # "text": any token sequence (captions, queries, code)
    reads: ClassVar[str]  # what prepare() takes apart: one of mmssl.kinds.TOWER_INPUTS
    output_dim: int

    def __init__(self, config: TowerConfig):
        super().__init__()
        self.config = config
        self.locked = False

    def prepare(self, raw_items: list) -> Any:
        """Raw items (PIL images or strings) to the inputs ``forward`` takes (eval preprocessing)."""
        raise NotImplementedError

    def lock(self) -> "Tower":
        """Freeze every weight (``requires_grad=False``) and stay in eval mode (dropout off) for good.

        Nothing in a locked tower requires a gradient, so autograd records nothing for it: the
        forward pass costs what inference does.
        """
        self.locked = True
        for p in self.parameters():
            p.requires_grad_(False)
        return self.train(False)

    def train(self, mode: bool = True) -> "Tower":
        return super().train(mode and not self.locked)

    @torch.no_grad()
    def encode(self, raw_items: list, batch_size: int = 64) -> torch.Tensor:
        """Features of ``raw_items`` in order: (N, output_dim) float32 on the tower's device.

        Batches come from :func:`bucketed_batches`: strings are grouped by token length, so a batch
        is padded to a similar length rather than to its one long outlier.
        """
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        features = torch.zeros(len(raw_items), self.output_dim, device=device)  # (N, D)
        for rows, inputs in bucketed_batches(self, raw_items, batch_size):
            features[rows] = self(_to_device(inputs, device)).float()  # (b, D)
        self.train(was_training)
        return features


BUCKET_WINDOW = 4096  # strings tokenised and sorted together: bounds the token tensors of a huge list


def bucketed_batches(tower: Tower, raw_items: list, batch_size: int, max_length: int | None = None,
                     prepare: Callable[[list], Any] | None = None) -> Iterator[tuple[list[int], Any]]:
    """Yield ``(rows, inputs)``: the positions in ``raw_items`` and the tower's inputs for them.

    Strings (text towers) are tokenised a window at a time and batched shortest first by token
    count; each batch's tensors are cut to its own longest row (right padding, so the cut drops only
    padding: a batch's inputs equal ``tower.prepare`` of its strings). Images go in input order,
    prepared one batch at a time (``prepare``, default ``tower.prepare``, e.g. decoding first).
    ``max_length`` (MiniLM towers) truncates below the config's length.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    prepare = prepare or tower.prepare
    if tower.modality != "text":
        for start in range(0, len(raw_items), batch_size):
            rows = list(range(start, min(start + batch_size, len(raw_items))))
            yield rows, prepare(raw_items[start:start + batch_size])
        return
    options = {} if max_length is None else {"max_length": max_length}
    for window in range(0, len(raw_items), BUCKET_WINDOW):
        inputs = prepare(raw_items[window:window + BUCKET_WINDOW], **options)
        mask = inputs.get("attention_mask") if isinstance(inputs, dict) else None
        if mask is None:  # fixed-length inputs (CLIP's context): nothing to bucket
            lengths = torch.zeros(len(raw_items[window:window + BUCKET_WINDOW]), dtype=torch.long)
        else:
            lengths = mask.sum(1)  # (W,) tokens per string
        order = torch.sort(lengths, stable=True).indices  # (W,)
        for start in range(0, len(order), batch_size):
            picked = order[start:start + batch_size]  # (b,)
            width = int(lengths[picked].max()) if mask is not None else None
            yield (picked + window).tolist(), _cut_batch(inputs, picked, width)


def _cut_batch(inputs: Any, picked: torch.Tensor, width: int | None) -> Any:
    """Rows ``picked`` of a tokenised window, cut to ``width`` columns (``None``: all of them)."""
    if not isinstance(inputs, dict):
        return inputs[picked]
    return {k: v[picked, :width] if width is not None and v.ndim == 2 else v[picked] for k, v in inputs.items()}


def _to_device(inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, dict):
        return {k: v.to(device) for k, v in inputs.items()}
    return inputs.to(device)


def finish_tower(tower: Tower, config: TowerConfig) -> Tower:
    """Apply the config's ``pretrained`` (checkpoint path) and ``locked`` settings; factories end with this."""
    if config.pretrained == "minilm" and config.name != "minilm":
        raise ValueError(f"pretrained='minilm' only applies to the 'minilm' tower, not {config.name!r}; "
                         "use 'scratch' or a path to an mmssl checkpoint")
    if config.pretrained == "source" and config.name != "hf-text":
        raise ValueError(f"pretrained='source' only applies to the 'hf-text' tower, not {config.name!r}")
    if config.pretrained not in ("scratch", "minilm", "source"):
        load_encoder_weights(tower, config.pretrained)
    if config.locked:
        tower.lock()
    return tower


def resolve_checkpoint_file(path: str | Path) -> Path:
    """``model.safetensors`` of a checkpoint given as the file, its folder, or a run folder (latest)."""
    path = Path(path)
    recover_folder(path)
    if path.is_file():
        return path
    if (path / "model.safetensors").is_file():
        return path / "model.safetensors"
    if (path / "checkpoints").is_dir():
        latest = latest_checkpoint(path / "checkpoints")
        if latest is not None and (latest / "model.safetensors").is_file():
            return latest / "model.safetensors"
    raise CheckpointError(f"no mmssl checkpoint at {path}: expected a model.safetensors file, a checkpoint folder "
                          "holding one, or a run folder with checkpoints/; use pretrained='scratch' to start fresh")


def _checkpoint_state(weights_file: Path) -> dict:
    state_file = weights_file.parent / "state.json"
    return json.loads(state_file.read_text()) if state_file.is_file() else {}


def state_differences(own: dict, state: dict, theirs: str = "file", ours: str = "model"):
    """(missing, unexpected, shape-mismatched) keys of ``state`` against a module's ``own`` state dict."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [f"{k}: {theirs} {tuple(state[k].shape)} vs {ours} {tuple(own[k].shape)}"
                  for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    return missing, unexpected, mismatched


def load_encoder_weights(tower: Tower, path: str | Path) -> None:
    """Initialise ``tower`` from the ``encoder.*`` tensors of an mmssl checkpoint.

    Raises:
        CheckpointError: no checkpoint there, no ``encoder.*`` tensors in it, the checkpoint's
            encoder is another tower, or its tensors' names or shapes differ from this tower's.
    """
    from safetensors.torch import load_file

    weights_file = resolve_checkpoint_file(path)
    state = _checkpoint_state(weights_file)
    kind = state.get("kind", "unknown")
    saved_encoder = (state.get("extra_config") or {}).get("encoder") or {}
    name = tower.config.name
    if isinstance(saved_encoder, dict) and saved_encoder.get("name") not in (None, name):
        raise CheckpointError(f"{weights_file} holds a {saved_encoder['name']!r} encoder ({kind} checkpoint), "
                              f"not a {name!r} tower; set the tower name to {saved_encoder['name']!r} "
                              "or use another checkpoint")
    weights = {k[len(ENCODER_PREFIX):]: v
               for k, v in load_file(str(weights_file)).items() if k.startswith(ENCODER_PREFIX)}
    if not weights:
        raise CheckpointError(f"{weights_file} ({kind} checkpoint) has no '{ENCODER_PREFIX}*' tensors to initialise "
                              f"a {name!r} tower from; pass a pretext or contrastive checkpoint, "
                              "or pretrained='scratch'")
    missing, unexpected, mismatched = state_differences(tower.state_dict(), weights, "checkpoint", "tower")
    if missing or unexpected or mismatched:
        problems = "; ".join(f"{label} {items[:3]}{' …' if len(items) > 3 else ''}"
                             for label, items in (("missing", missing), ("unexpected", unexpected),
                                                  ("shape mismatch", mismatched)) if items)
        raise CheckpointError(f"the encoder in {weights_file} ({kind} checkpoint) does not fit a {name!r} tower "
                              f"with this config ({problems}); build the tower with the config the checkpoint was "
                              "trained with (name, width, layers, max_length, tokenizer)")
    tower.load_state_dict(weights)
