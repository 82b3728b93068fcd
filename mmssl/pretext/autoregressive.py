"""Autoregressive pretext tasks: predict each element from the ones before it.

* :class:`NextTokenPrediction`: causal language modelling, ``-sum_t log p(x_t | x_<t)``, over any
  causal sequence tower: ``gpt`` over code tokens (GPT-style) or ``wavenet`` over bytes (WaveNet).
  The output layer is tied to the tower's input embedding (Press & Wolf, 2017).
* :class:`BidirectionalLM`: ELMo-style biLM on the ``bigru``/``bilstm`` tower (the RNN variant,
  PixelRNN/WaveRNN spirit): its forward RNN predicts the next token, its backward RNN the previous
  one, each with its own softmax. Needs ``layers = 1``: the tower feeds both directions' states to
  the next layer, which would let the forward direction see the future.
* :class:`PixelCNN`: raster-scan pixel modelling with the gated ``pixelcnn-32`` tower: a softmax over
  ``levels`` values per channel, reported in bits per dimension.

Sampling, so a user can see what was learned: :func:`sample_tokens` (``gpt``, ``wavenet``),
:func:`sample_bilm` (``bigru``), :func:`sample_pixelcnn` (images, one pixel per forward pass).

Batches: sequences are ``{"input_ids", "attention_mask"}`` (B, L) from the tower's ``tokenize``;
images are (B, 3, S, S) from the tower's ``transform``. Sequences shorter than the context are
padded and masked; a sequence with nothing to predict (one token) contributes no term, and a batch
with no term at all gives a loss of exactly zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mmssl.encoders.code import reverse_padded
from mmssl.encoders.pretext_towers import WaveNetTower, decode_bytes
from mmssl.encoders.tower import Tower


def masked_token_loss(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Mean cross-entropy over the ``valid`` positions; (0, 0.0) when there are none.

    Args:
        logits: (B, L, V). targets: (B, L) int. valid: (B, L) bool.

    Returns:
        (loss, top-1 accuracy over the valid positions).
    """
    flat_logits = logits[valid]  # (N, V)
    if flat_logits.shape[0] == 0:
        return logits.sum() * 0.0, 0.0
    flat_targets = targets[valid]  # (N,)
    loss = F.cross_entropy(flat_logits.float(), flat_targets)
    accuracy = (flat_logits.argmax(-1) == flat_targets).float().mean().item()
    return loss, accuracy


def _require_causal(encoder: Tower, method: str) -> None:
    if not getattr(encoder, "causal", False):
        raise ValueError(f"{method} needs a causal tower (position t must not see t+1): 'gpt', 'wavenet' or "
                         f"'pixelcnn-32', got {encoder.config.name!r}")


class NextTokenPrediction(nn.Module):
    """Causal LM over a causal sequence tower (``gpt``: code tokens; ``wavenet``: bytes).

    ``loss(batch)``: states = tower.contextualise(embed(ids)) (B, L, D); logits = states @ E^T (B, L, V);
    position t predicts token t+1 where both are real tokens.
    """

    def __init__(self, encoder: Tower):
        super().__init__()
        _require_causal(encoder, "next-token prediction")
        self.encoder = encoder
        self.output_norm = nn.LayerNorm(encoder.output_dim)

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, V) next-token logits."""
        tokens = self.encoder.dropout(self.encoder.embedding(input_ids))  # (B, L, D)
        states = self.output_norm(self.encoder.contextualise(tokens, attention_mask))  # (B, L, D)
        # the towers' embeddings start at N(0, 1): scale the tied logits by D^-1/2 so they start near unit variance
        return states @ self.encoder.embedding.weight.T * self.encoder.output_dim ** -0.5  # (B, L, V)

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        ids, mask = batch["input_ids"], batch["attention_mask"].bool()  # (B, L)
        logits = self.logits(ids, mask.long())[:, :-1]  # (B, L-1, V): position t predicts t+1
        loss, accuracy = masked_token_loss(logits, ids[:, 1:], mask[:, 1:])
        return loss, {"accuracy": accuracy, "bits_per_token": loss.item() / math.log(2)}


class BidirectionalLM(nn.Module):
    """ELMo's biLM on a one-layer ``bigru``/``bilstm`` tower: forward RNN -> next token, backward -> previous."""

    def __init__(self, encoder: Tower):
        super().__init__()
        if not hasattr(encoder, "forward_rnns"):
            raise ValueError(f"the bidirectional LM trains a 'bigru' or 'bilstm' tower, got {encoder.config.name!r}")
        if len(encoder.forward_rnns) != 1:
            raise ValueError(f"the bidirectional LM needs a one-layer RNN tower (layers=1), got {len(encoder.forward_rnns)}"
                             ": deeper towers feed both directions into each next layer, so the forward LM "
                             "would see the future")
        self.encoder = encoder
        vocab, half = encoder.embedding.num_embeddings, encoder.output_dim // 2
        self.next_head = nn.Linear(half, vocab)
        self.previous_head = nn.Linear(half, vocab)

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        ids, mask = batch["input_ids"], batch["attention_mask"].bool()  # (B, L)
        lengths = mask.sum(1)  # (B,)
        tokens = self.encoder.dropout(self.encoder.embedding(ids))  # (B, L, D)
        forward_states, _ = self.encoder.forward_rnns[0](tokens)  # (B, L, D/2): t sees <= t
        backward_states, _ = self.encoder.backward_rnns[0](reverse_padded(tokens, lengths))  # reversed order
        backward_states = reverse_padded(backward_states, lengths)  # (B, L, D/2): t sees >= t
        forward_states, backward_states = self.encoder.dropout(forward_states), self.encoder.dropout(backward_states)
        next_loss, next_accuracy = masked_token_loss(self.next_head(forward_states[:, :-1]), ids[:, 1:], mask[:, 1:])
        # position t (t >= 1) predicts token t-1; token 0 is [CLS], a target with nothing to learn
        previous_valid = mask[:, 1:].clone()
        previous_valid[:, :1] = False
        previous_loss, previous_accuracy = masked_token_loss(self.previous_head(backward_states[:, 1:]), ids[:, :-1],
                                                             previous_valid)
        loss = (next_loss + previous_loss) / 2
        return loss, {"next_loss": next_loss.item(), "previous_loss": previous_loss.item(),
                      "next_accuracy": next_accuracy, "previous_accuracy": previous_accuracy}


class PixelCNN(nn.Module):
    """Discrete raster-scan likelihood over a gated ``pixelcnn-32`` tower.

    ``loss(images)``: images (B, 3, S, S) in [-1, 1] quantised to ``levels`` bin centres; targets
    ``q = floor((x + 1) / 2 * levels)`` (B, 3, S, S); logits (B, levels, 3, S, S) from a 1x1 head.
    """

    def __init__(self, encoder: Tower, head_width: int = 64):
        super().__init__()
        _require_causal(encoder, "the PixelCNN")
        if not hasattr(encoder, "feature_map"):
            raise ValueError(f"the PixelCNN needs the 'pixelcnn-32' tower, got {encoder.config.name!r}")
        self.encoder = encoder
        self.levels = encoder.levels
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(encoder.output_dim, head_width, 1), nn.ReLU(),
                                  nn.Conv2d(head_width, 3 * self.levels, 1))

    def targets(self, images: torch.Tensor) -> torch.Tensor:
        return ((images + 1) / 2 * self.levels).floor().clamp(0, self.levels - 1).long()  # (B, 3, S, S)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        out = self.head(self.encoder.feature_map(images))  # (B, 3 * levels, S, S)
        return out.view(b, 3, self.levels, h, w).transpose(1, 2)  # (B, levels, 3, S, S)

    def loss(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.cross_entropy(self.logits(images).float(), self.targets(images))
        return loss, {"bits_per_dim": loss.item() / math.log(2)}


def _filter_logits(logits: torch.Tensor, temperature: float, top_k: int | None) -> torch.Tensor:
    logits = logits / max(temperature, 1e-6)
    if top_k is not None and top_k < logits.shape[-1]:
        threshold = logits.topk(top_k, dim=-1).values[..., -1:]  # (..., 1)
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    return logits


@torch.no_grad()
def sample_tokens(method: NextTokenPrediction, prompts: list[str], max_new_tokens: int = 64,
                  temperature: float = 0.8, top_k: int | None = 20, seed: int = 0) -> list[list[int]]:
    """Continue each prompt (tokenised by the tower) by ``max_new_tokens`` sampled ids.

    The context is cut to the tower's last ``max_length`` ids (the ``gpt`` tower's positions stop
    there). Returns each row's ids, prompt included, for the tower's decoder
    (:func:`decode_sample`).
    """
    was_training = method.training
    method.eval()
    generator = torch.Generator().manual_seed(seed)
    device = next(method.parameters()).device
    rows = []
    for prompt in prompts:
        ids = method.encoder.tokenize([prompt])["input_ids"].to(device)  # (1, L)
        for _ in range(max_new_tokens):
            context = ids[:, -method.encoder.config.max_length:]
            logits = method.logits(context, torch.ones_like(context))[0, -1]  # (V,)
            probs = _filter_logits(logits.float(), temperature, top_k).softmax(-1).cpu()
            ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator).to(device).view(1, 1)], dim=1)
        rows.append(ids[0].tolist())
    method.train(was_training)
    return rows


def decode_sample(encoder: Tower, ids: list[int]) -> str:
    """Text of sampled ids: bytes for ``wavenet``, the code tokenizer's decoder otherwise."""
    if isinstance(encoder, WaveNetTower):
        return decode_bytes(ids)
    return encoder.tokenizer.decode(ids, skip_special_tokens=True)


@torch.no_grad()
def sample_bilm(method: BidirectionalLM, prompts: list[str], max_new_tokens: int = 64, temperature: float = 0.8,
                top_k: int | None = 20, seed: int = 0) -> list[str]:
    """Continue each prompt with the forward RNN, one step at a time from its carried state."""
    was_training = method.training
    method.eval()
    generator = torch.Generator().manual_seed(seed)
    rnn, encoder = method.encoder.forward_rnns[0], method.encoder
    texts = []
    for prompt in prompts:
        ids = encoder.tokenize([prompt])["input_ids"]  # (1, L)
        states, hidden = rnn(encoder.embedding(ids))  # (1, L, D/2)
        out = ids[0].tolist()
        last = states[:, -1]  # (1, D/2)
        for _ in range(max_new_tokens):
            probs = _filter_logits(method.next_head(last)[0].float(), temperature, top_k).softmax(-1)
            token = torch.multinomial(probs, 1, generator=generator)  # (1,)
            out.append(int(token))
            states, hidden = rnn(encoder.embedding(token.view(1, 1)), hidden)
            last = states[:, -1]
        texts.append(encoder.tokenizer.decode(out, skip_special_tokens=True))
    method.train(was_training)
    return texts


@torch.no_grad()
def sample_pixelcnn(method: PixelCNN, num_images: int = 16, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
    """Draw ``num_images`` images pixel by pixel in raster order: (N, 3, S, S) in [-1, 1].

    One forward pass per pixel (S * S passes), as the model defines; each pass re-computes the whole
    image, which costs ~S^2 forward passes (a few seconds at 32 px for the tiny tower on a CPU).
    """
    was_training = method.training
    method.eval()
    generator = torch.Generator().manual_seed(seed)
    size, levels = method.encoder.image_size, method.levels
    device = next(method.parameters()).device
    images = torch.zeros(num_images, 3, size, size, device=device)  # (N, 3, S, S)
    for i in range(size):
        for j in range(size):
            logits = method.logits(images)[:, :, :, i, j]  # (N, levels, 3)
            probs = (logits.float() / temperature).softmax(1).permute(0, 2, 1).reshape(-1, levels).cpu()  # (3N, lv)
            values = torch.multinomial(probs, 1, generator=generator).view(num_images, 3).to(device)  # (N, 3)
            images[:, :, i, j] = (values.float() + 0.5) / levels * 2 - 1
    method.train(was_training)
    return images
