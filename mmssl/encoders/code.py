"""Code towers: the CodeSearchNet baseline family (Husain et al., 2019) over the code tokenizer.

Each tower embeds the subword ids, contextualises them (or not) and pools the token vectors into
one (B, width) feature, ignoring padding throughout:

* ``nbow``: neural bag of words, embeddings pooled directly;
* ``cnn``: a stack of residual 1D convolutions (kernel ``kernel_size``);
* ``bigru`` / ``bilstm``: a bidirectional RNN (padding never reaches a real token's state);
* ``self-attention``: a pre-norm transformer encoder with learned positions and a padding mask.

Pooling (``config.pooling``): masked ``mean``, masked ``max``, or ``attention`` (a learned score
per token, softmax over the real tokens: CodeSearchNet's weighted mean). The same towers encode
the natural-language query side of code search; MiniLM (:mod:`mmssl.encoders.text`) is the
pretrained alternative on either side.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from mmssl.encoders.tokenizer import PAD_ID, encode_batch, load_code_tokenizer
from mmssl.encoders.tower import Tower, TowerConfig, finish_tower, resolve_checkpoint_file
from mmssl.kinds import CODE_TOKENS


class SequencePooling(nn.Module):
    """(B, L, D) token vectors and a (B, L) mask -> (B, D), looking only at real tokens."""

    def __init__(self, kind: str, width: int):
        super().__init__()
        if kind not in ("mean", "max", "attention"):
            raise ValueError(f"pooling must be 'mean', 'max' or 'attention', got {kind!r}")
        self.kind = kind
        # no bias: softmax is shift-invariant, a bias would never receive a gradient
        self.score = nn.Linear(width, 1, bias=False) if kind == "attention" else None

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.bool().unsqueeze(-1)  # (B, L, 1)
        if self.kind == "mean":
            return (tokens * keep).sum(1) / keep.sum(1).clamp(min=1)  # (B, D)
        if self.kind == "max":
            return tokens.masked_fill(~keep, torch.finfo(tokens.dtype).min).amax(1)  # (B, D)
        scores = self.score(tokens).masked_fill(~keep, torch.finfo(tokens.dtype).min)  # (B, L, 1)
        return (scores.softmax(dim=1) * tokens).sum(1)  # (B, D)


class CodeTower(Tower):
    """Shared parts: the tokenizer, the token embedding and the pooling; subclasses contextualise."""

    modality = "text"
    reads = CODE_TOKENS

    def __init__(self, config: TowerConfig, tokenizer: Tokenizer):
        super().__init__(config)
        self.tokenizer = tokenizer
        self.embedding = nn.Embedding(tokenizer.get_vocab_size(), config.width, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(config.dropout)
        self.pool = SequencePooling(config.pooling, config.width)
        self.output_dim = config.width

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return encode_batch(self.tokenizer, texts, self.config.max_length)  # input_ids, attention_mask: (B, L)

    prepare = tokenize

    def contextualise(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, D) embedded tokens -> (B, L, D) token vectors."""
        raise NotImplementedError

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = inputs["attention_mask"]  # (B, L), 1 = token
        tokens = self.dropout(self.embedding(inputs["input_ids"]))  # (B, L, D)
        return self.pool(self.contextualise(tokens, mask), mask)  # (B, D)


class NBoWTower(CodeTower):
    """Neural bag of words: the embeddings themselves are pooled."""

    def contextualise(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return tokens


class CNNTower(CodeTower):
    """Residual 1D convolutions (same padding, GELU); padded positions are zeroed after each layer
    so they never leak into their neighbours' receptive fields."""

    def __init__(self, config: TowerConfig, tokenizer: Tokenizer):
        super().__init__(config, tokenizer)
        if config.kernel_size % 2 == 0:
            raise ValueError(f"cnn kernel_size must be odd (same padding), got {config.kernel_size}")
        self.convs = nn.ModuleList(nn.Conv1d(config.width, config.width, config.kernel_size,
                                             padding=config.kernel_size // 2) for _ in range(config.layers))

    def contextualise(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.unsqueeze(1).to(tokens.dtype)  # (B, 1, L)
        x = tokens.transpose(1, 2) * keep  # (B, D, L): Conv1d wants channels first
        for conv in self.convs:
            x = (x + self.dropout(F.gelu(conv(x)))) * keep  # (B, D, L)
        return x.transpose(1, 2)  # (B, L, D)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first ``lengths[b]`` steps, leaving its padding in place (self-inverse).

    (B, L, D), (B,) -> (B, L, D): ``[a, b, c, pad]`` -> ``[c, b, a, pad]``.
    """
    steps = torch.arange(x.shape[1], device=x.device)  # (L,)
    lengths = lengths.unsqueeze(1)  # (B, 1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (B, L)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class BiRNNTower(CodeTower):
    """Bidirectional GRU or LSTM; each direction has ``width // 2`` units.

    Padding never reaches a real position: padding is on the right, so the forward RNN meets it
    only after the last token, and the backward RNN reads each sequence reversed in place
    (:func:`reverse_padded`), padding again last. This is what ``pack_padded_sequence`` gives,
    without its CPU backward, which re-fills a gradient of the whole packed batch at every time
    step (quadratic in the length, so it falls far behind at a few hundred tokens on CPU).
    """

    def __init__(self, config: TowerConfig, tokenizer: Tokenizer, cell: str):
        super().__init__(config, tokenizer)
        if config.width % 2:
            raise ValueError(f"a bidirectional RNN splits width between two directions; width must be even, "
                             f"got {config.width}")
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        hidden = config.width // 2
        self.forward_rnns = nn.ModuleList(rnn(config.width, hidden, batch_first=True) for _ in range(config.layers))
        self.backward_rnns = nn.ModuleList(rnn(config.width, hidden, batch_first=True) for _ in range(config.layers))

    def contextualise(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1)  # (B,), >= 1: every sequence starts with [CLS]
        x = tokens  # (B, L, D)
        for layer, (forward_rnn, backward_rnn) in enumerate(zip(self.forward_rnns, self.backward_rnns)):
            if layer:
                x = self.dropout(x)
            forward_states, _ = forward_rnn(x)  # (B, L, D/2)
            backward_states, _ = backward_rnn(reverse_padded(x, lengths))  # (B, L, D/2), in reversed order
            x = torch.cat([forward_states, reverse_padded(backward_states, lengths)], dim=-1)  # (B, L, D)
        return self.dropout(x)


class SelfAttentionTower(CodeTower):
    """Pre-norm transformer encoder (GELU, 4x MLP) with learned positions and a padding mask."""

    def __init__(self, config: TowerConfig, tokenizer: Tokenizer):
        super().__init__(config, tokenizer)
        if config.width % config.heads:
            raise ValueError(f"width {config.width} is not divisible by heads {config.heads}")
        self.positions = nn.Parameter(torch.randn(config.max_length, config.width) * 0.02)  # (max_length, D)
        layer = nn.TransformerEncoderLayer(config.width, config.heads, 4 * config.width, config.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.width)

    def contextualise(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = tokens + self.positions[: tokens.shape[1]]  # (B, L, D)
        x = self.encoder(x, src_key_padding_mask=~mask.bool())  # (B, L, D)
        return self.norm(x)


def saved_code_tokenizer(config: TowerConfig) -> Path | None:
    """The tokenizer file a tower comes with: the config's, else the ``tokenizer.json`` saved with
    its pretrained checkpoint (in its folder or its run folder); None when it has none."""
    if config.tokenizer:
        return Path(config.tokenizer)
    if config.pretrained not in ("scratch", "minilm"):
        checkpoint = resolve_checkpoint_file(config.pretrained).parent
        for candidate in (checkpoint / "tokenizer.json", checkpoint.parent.parent / "tokenizer.json"):
            if candidate.is_file():
                return candidate
    return None


def keep_code_tokenizer(config: TowerConfig, run_dir: str | Path) -> bool:
    """Copy the tokenizer a tower comes with (:func:`saved_code_tokenizer`) to ``run_dir/tokenizer.json``,
    where ``build_tower(pretrained=run_dir)`` finds it, so a pretraining run folder is self-contained;
    False (nothing copied) when the tower comes with none."""
    saved = saved_code_tokenizer(config)
    if saved is None:
        return False
    target = Path(run_dir) / "tokenizer.json"
    if saved.resolve() != target.resolve():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved, target)
    return True


def resolve_code_tokenizer(config: TowerConfig, tokenizer: Tokenizer | None) -> Tokenizer:
    """The tokenizer given, else the one the tower comes with (:func:`saved_code_tokenizer`)."""
    if tokenizer is not None:
        return tokenizer
    saved = saved_code_tokenizer(config)
    if saved is not None:
        return load_code_tokenizer(saved)
    raise ValueError(f"tower {config.name!r} needs a code tokenizer: pass tokenizer=train_code_tokenizer(texts) "
                     "to build_tower, or set tokenizer to the path of a saved tokenizer JSON")


def _build(tower_class, config: TowerConfig, tokenizer: Tokenizer | None, **kwargs) -> CodeTower:
    tower = tower_class(config, resolve_code_tokenizer(config, tokenizer), **kwargs)
    return finish_tower(tower, config)


def build_nbow_tower(config: TowerConfig, tokenizer: Tokenizer | None = None) -> NBoWTower:
    return _build(NBoWTower, config, tokenizer)


def build_cnn_tower(config: TowerConfig, tokenizer: Tokenizer | None = None) -> CNNTower:
    return _build(CNNTower, config, tokenizer)


def build_birnn_tower(config: TowerConfig, tokenizer: Tokenizer | None = None, *, cell: str) -> BiRNNTower:
    return _build(BiRNNTower, config, tokenizer, cell=cell)


def build_self_attention_tower(config: TowerConfig, tokenizer: Tokenizer | None = None) -> SelfAttentionTower:
    return _build(SelfAttentionTower, config, tokenizer)
