"""The dual encoder: two towers, linear projections to a shared space, CLIP's learnable scale.

    query (B, ...) -> query_tower -> (B, Dq) -> query_projection -> L2-normalise -> (B, E)
    item  (B, ...) -> item_tower  -> (B, Di) -> item_projection  -> L2-normalise -> (B, E)
    loss = symmetric InfoNCE over s * Q I^T, s = exp(log_logit_scale) clamped at 100

The *query* side is what users type (a caption, a code-search question); the *item* side is what
they search (an image, a function). The loss and its learnable scale are
:class:`mmssl.losses.SymmetricInfoNCELoss`, which also gathers the global batch under torchrun.

Precomputed features: a locked tower always gives the same features, so a data pipeline may
compute them once (``tower.encode(raw_items)``) and pass them as ``batch["query_features"]`` /
``batch["item_features"]`` (B, D); the tower is then skipped (how the default CPU models train
fast with MiniLM locked). Likewise a partially frozen MiniLM (``frozen_layers``) takes its frozen
part's token states as ``batch["{side}_states"]`` (B, L, H) + ``batch["{side}_states_mask"]`` (B, L)
and runs only its trainable top layers.

``projection_init="identity"`` starts both projections at the identity (needs equal tower widths
and ``embed_dim``), so a model whose towers already share a space (MiniLM on both sides) starts
exactly at that space's zero-shot retrieval and training moves on from there.

Saved models are folders: ``model.safetensors`` + ``config.json`` (+ ``{side}_tokenizer.json`` for
code towers). A locked MiniLM tower is left out of the weights (its package holds them), which
keeps the release checkpoints small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from mmssl.checkpoint import CheckpointError
from mmssl.config import from_dict, to_dict
from mmssl.encoders.registry import build_tower
from mmssl.encoders.tokenizer import load_code_tokenizer, save_code_tokenizer
from mmssl.encoders.tower import Tower, TowerConfig
from mmssl.io import recover_folder, replace_folder, temp_folder
from mmssl.kinds import DUAL_ENCODER_CHECKPOINT
from mmssl.losses import SymmetricInfoNCELoss

FORMAT_VERSION = 1
SIDES = ("query", "item")


@dataclass
class DualEncoderConfig:
    """Both towers and the shared space. Defaults: the CPU image-text model (locked MiniLM queries,
    tiny ViT images); code search sets ``item`` to a code tower."""

    query: TowerConfig = field(default_factory=lambda: TowerConfig(name="minilm", pretrained="minilm", locked=True))
    item: TowerConfig = field(default_factory=lambda: TowerConfig(name="vit-tiny-64"))
    embed_dim: int = 256
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0
    projection_init: Literal["random", "identity"] = "random"


class DualEncoder(nn.Module):
    """Two towers in one embedding space; ``loss(batch) -> (loss, logs)`` for the trainer.

    ``batch``: ``{"query": inputs or "query_features": (B, Dq), "item": inputs or "item_features": (B, Di)}``,
    inputs being what each tower's ``prepare``/``tokenize``/``transform`` makes; row i of each side pairs.
    """

    def __init__(self, query_tower: Tower, item_tower: Tower, embed_dim: int = 256, init_temperature: float = 0.07,
                 max_logit_scale: float = 100.0, config: DualEncoderConfig | None = None,
                 projection_init: Literal["random", "identity"] = "random"):
        super().__init__()
        self.query_tower, self.item_tower = query_tower, item_tower
        self.query_projection = nn.Linear(query_tower.output_dim, embed_dim, bias=False)
        self.item_projection = nn.Linear(item_tower.output_dim, embed_dim, bias=False)
        if projection_init == "identity":
            if not query_tower.output_dim == item_tower.output_dim == embed_dim:
                raise ValueError(f"projection_init='identity' needs both towers' widths ({query_tower.output_dim}, "
                                 f"{item_tower.output_dim}) equal to embed_dim ({embed_dim})")
            nn.init.eye_(self.query_projection.weight)
            nn.init.eye_(self.item_projection.weight)
        elif projection_init != "random":
            raise ValueError(f"projection_init must be 'random' or 'identity', got {projection_init!r}")
        self.contrastive_loss = SymmetricInfoNCELoss(init_temperature, max_logit_scale, learnable=True)
        self.embed_dim = embed_dim
        self.config = config

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.contrastive_loss.logit_scale  # scalar, exp(log scale) clamped at max_logit_scale

    def project_query(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.query_projection(features), dim=-1)  # (B, Dq) -> (B, E)

    def project_item(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.item_projection(features), dim=-1)  # (B, Di) -> (B, E)

    def encode_query(self, inputs) -> torch.Tensor:
        return self.project_query(self.query_tower(inputs))  # (B, E), unit rows

    def encode_item(self, inputs) -> torch.Tensor:
        return self.project_item(self.item_tower(inputs))  # (B, E), unit rows

    def forward(self, query_inputs, item_inputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.encode_query(query_inputs), self.encode_item(item_inputs), self.logit_scale

    def _side(self, batch: dict, side: str, prefix: str = "") -> torch.Tensor:
        """(B, E) of one side from ``batch[prefix + side]`` (inputs), ``..._states`` or ``..._features``;
        ``prefix="negative_"`` reads the hard negatives of that side."""
        tower: Tower = getattr(self, f"{side}_tower")
        key = f"{prefix}{side}"
        states = batch.get(f"{key}_states")
        if states is not None:
            if not getattr(tower.config, "frozen_layers", 0):
                raise ValueError(f"batch['{key}_states'] holds frozen-part states, but the {side} tower "
                                 f"{tower.config.name!r} has no frozen layers; pass batch['{key}']")
            features = tower.forward_from_states(states.to(self.query_projection.weight.dtype),
                                                 batch[f"{key}_states_mask"])
            return getattr(self, f"project_{side}")(features)
        features = batch.get(f"{key}_features")
        if features is None:
            return getattr(self, f"encode_{side}")(batch[key])
        if not tower.locked:
            raise ValueError(f"batch['{key}_features'] skips the {side} tower, which would then never train; "
                             f"precompute features only for a locked tower ({side}.locked=True) "
                             f"or pass batch['{key}']")
        if features.ndim != 2 or features.shape[1] != tower.output_dim:
            raise ValueError(f"batch['{key}_features'] has shape {tuple(features.shape)}; the {side} tower "
                             f"{tower.config.name!r} gives (B, {tower.output_dim})")
        return getattr(self, f"project_{side}")(features.to(self.query_projection.weight.dtype))

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Symmetric InfoNCE of the batch's pairs; a batch with ``negative_item`` (or its ``_states`` /
        ``_features``) adds one hard negative item per pair to the query -> item direction."""
        queries, items = self._side(batch, "query"), self._side(batch, "item")
        if not any(k in batch for k in ("negative_item", "negative_item_states", "negative_item_features")):
            return self.loss_from_embeddings(queries, items)
        negatives = self._side(batch, "item", prefix="negative_")  # (B, E)
        loss, logs = self.loss_from_embeddings(queries, items, negatives)
        with torch.no_grad():  # how often the positive already beats its own hard negative
            logs["negative_accuracy"] = float(((queries * items).sum(1) > (queries * negatives).sum(1)).float().mean())
        return loss, logs

    # The loss split at the embeddings, for gradient caching (mmssl.train.gradcache).
    sides = SIDES

    def embed_side(self, batch: dict, side: str) -> torch.Tensor:
        """(B, E) unit rows of one side of a training batch (from inputs, features or states)."""
        return self._side(batch, side)

    def cheap_side(self, batch: dict, side: str) -> bool:
        """Precomputed features only pass through the projection: no need to re-run them in chunks."""
        return batch.get(f"{side}_features") is not None

    def loss_from_embeddings(self, queries: torch.Tensor, items: torch.Tensor,
                             negatives: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Symmetric InfoNCE of (B, E) ``queries`` against (B, E) ``items`` (and (K, E) extra ``negatives``
        for the queries), and the in-batch accuracy (over the pairs)."""
        loss = self.contrastive_loss(queries, items, negatives)
        with torch.no_grad():
            similarity = queries @ items.T  # (B, B), positives on the diagonal
            targets = torch.arange(similarity.shape[0], device=similarity.device)
            query_to_item = (similarity.argmax(1) == targets).float().mean()
            item_to_query = (similarity.argmax(0) == targets).float().mean()
        accuracy = float((query_to_item + item_to_query) / 2)  # in-batch top-1, both directions
        return loss, {"logit_scale": float(self.logit_scale.detach()), "accuracy": accuracy}

    @torch.no_grad()
    def embed_queries(self, raw_items: list, batch_size: int = 64) -> torch.Tensor:
        """Raw queries (strings) -> (N, E) unit rows, in order."""
        return self.project_query(self.query_tower.encode(raw_items, batch_size))

    @torch.no_grad()
    def embed_items(self, raw_items: list, batch_size: int = 64) -> torch.Tensor:
        """Raw items (PIL images or code strings) -> (N, E) unit rows, in order."""
        return self.project_item(self.item_tower.encode(raw_items, batch_size))


def build_dual_encoder(config: DualEncoderConfig, query_tokenizer: Tokenizer | None = None,
                       item_tokenizer: Tokenizer | None = None) -> DualEncoder:
    """Build both towers from ``config`` (code towers take their tokenizer here or from the config)."""
    return DualEncoder(build_tower(config.query, query_tokenizer), build_tower(config.item, item_tokenizer),
                       config.embed_dim, config.init_temperature, config.max_logit_scale, config=config,
                       projection_init=config.projection_init)


def _weights_from_package(tower_config: TowerConfig) -> bool:
    """A locked MiniLM never changes: its weights are read back from the MiniLM package."""
    return tower_config.name == "minilm" and tower_config.pretrained == "minilm" and tower_config.locked


def _frozen_from_package(tower_config: TowerConfig) -> bool:
    """A pretrained MiniLM fine-tuned above ``frozen_layers``: the frozen part comes from the package."""
    return tower_config.name == "minilm" and tower_config.pretrained == "minilm" and tower_config.frozen_layers > 0


def _package_keys(model: "DualEncoder", config: DualEncoderConfig) -> set[str]:
    """``state_dict`` keys of ``model`` whose values the MiniLM package holds (left out of saved files)."""
    keys = set()
    for side in SIDES:
        tower, tower_config = getattr(model, f"{side}_tower"), getattr(config, side)
        if _weights_from_package(tower_config):
            keys |= {f"{side}_tower.{k}" for k in tower.state_dict()}
        elif _frozen_from_package(tower_config):
            keys |= {f"{side}_tower.{k}" for k in tower.frozen_parameter_names()}
    return keys


def save_dual_encoder(model: DualEncoder, folder: str | Path, config: DualEncoderConfig | None = None) -> Path:
    """Write ``model`` to ``folder`` (atomically: temp folder + rename) and return the folder."""
    config = config or model.config
    if config is None:
        raise ValueError("save_dual_encoder needs the DualEncoderConfig the model was built from")
    folder = Path(folder)
    tmp = temp_folder(folder)
    tower_configs = {}
    skipped = []
    for side in SIDES:
        tower = getattr(model, f"{side}_tower")
        tower_config = getattr(config, side)
        if isinstance(getattr(tower, "tokenizer", None), Tokenizer):
            save_code_tokenizer(tower.tokenizer, tmp / f"{side}_tokenizer.json")
            tower_config = replace(tower_config, tokenizer=f"{side}_tokenizer.json")
        if _weights_from_package(tower_config):
            skipped.append(f"{side}_tower.")
        tower_configs[side] = tower_config
    from_package = _package_keys(model, config)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k not in from_package}
    from safetensors.torch import save_file

    save_file(state, str(tmp / "model.safetensors"), metadata={"kind": DUAL_ENCODER_CHECKPOINT})
    saved_config = replace(config, **tower_configs)
    meta = {"kind": DUAL_ENCODER_CHECKPOINT, "format_version": FORMAT_VERSION, "model": to_dict(saved_config),
            "weights_from_package": [s.rstrip(".") for s in skipped]}
    (tmp / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    return replace_folder(tmp, folder)


def load_dual_encoder(folder: str | Path, device: str | torch.device = "cpu") -> DualEncoder:
    """Rebuild a model written by :func:`save_dual_encoder` (eval mode, on ``device``).

    Raises:
        CheckpointError: ``folder`` holds no dual encoder, another kind of model, or weights that do
            not fit its config.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    recover_folder(folder)
    meta_file, weights_file = folder / "config.json", folder / "model.safetensors"
    if not meta_file.is_file() or not weights_file.is_file():
        raise CheckpointError(f"no dual encoder at {folder}: expected config.json and model.safetensors "
                              "written by mmssl.encoders.save_dual_encoder")
    meta = json.loads(meta_file.read_text())
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if kind != DUAL_ENCODER_CHECKPOINT:
        raise CheckpointError(f"{folder} holds a {kind!r} model, not a {DUAL_ENCODER_CHECKPOINT!r}; "
                              "point at a folder written by save_dual_encoder (e.g. models/clip-default)")
    config = from_dict(DualEncoderConfig, meta["model"])
    tokenizers = {}
    for side in SIDES:
        tower_config = getattr(config, side)
        if tower_config.tokenizer:
            tokenizers[side] = load_code_tokenizer(folder / tower_config.tokenizer)
            tower_config = replace(tower_config, tokenizer="")
        if not _weights_from_package(tower_config) and not _frozen_from_package(tower_config):
            tower_config = replace(tower_config, pretrained="scratch")  # the weights come from the file
        config = replace(config, **{side: tower_config})
    model = build_dual_encoder(config, tokenizers.get("query"), tokenizers.get("item"))
    state = load_file(str(weights_file))
    from_package = _package_keys(model, config)
    own = model.state_dict()
    missing = sorted(k for k in set(own) - set(state) if k not in from_package)
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or mismatched:
        raise CheckpointError(f"the weights in {weights_file} do not fit its config.json (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}, shape mismatch {mismatched[:3]}); the folder is "
                              "corrupt or was edited by hand; re-export the model")
    model.load_state_dict(state, strict=False)
    return model.to(device).eval()
