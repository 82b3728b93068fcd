"""Masked-prediction pretext tasks: hide part of a sample, predict it from the rest.

* :class:`MaskedLanguageModel` (BERT, Devlin et al. 2019) over any code tower that contextualises
  (``self-attention``, ``cnn``, ``bigru``/``bilstm``): 15% of the real tokens (never ``[CLS]``, at
  least one per sequence with two or more tokens) are chosen; of those, 80% become a learned
  ``[MASK]`` vector, 10% a random token, 10% stay; the chosen positions are predicted through a
  softmax tied to the input embedding. The code tokenizer has no ``[MASK]`` id, so the mask is a
  method parameter that replaces the embedded vector: the same thing, and the tower's vocabulary
  stays the one the dual encoder uses.
* :class:`MaskedAutoencoder` (MAE, He et al. 2022) over an open_clip ViT tower (``vit-tiny-64``):
  75% of the patches are dropped *before* the encoder, which sees the visible 25% only (plus its
  class token); a small transformer decoder gets the encoded visible tokens and a shared mask token
  at every hidden position and regresses the hidden patches' pixels, normalised per patch (the
  paper's ``norm_pix_loss``). The loss is the mean squared error over hidden patches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mmssl.encoders.tokenizer import CLS_ID
from mmssl.encoders.tower import Tower


@dataclass
class MLMConfig:
    mask_prob: float = 0.15  # share of real tokens chosen for prediction
    replace_mask: float = 0.8  # of the chosen: -> [MASK]
    replace_random: float = 0.1  # of the chosen: -> a random token (the rest stay unchanged)


def choose_mlm_positions(mask: torch.Tensor, config: MLMConfig, generator: torch.Generator | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BERT's corruption plan for a (B, L) attention mask.

    Returns three (B, L) bool tensors: ``chosen`` (predicted positions), ``to_mask`` and ``to_random``
    (disjoint subsets of ``chosen``). Position 0 (``[CLS]``) and padding are never chosen; every
    sequence with at least one other token has at least one chosen position.
    """
    device = mask.device
    candidates = mask.bool().clone()
    candidates[:, 0] = False  # [CLS]
    scores = torch.rand(mask.shape, generator=generator).to(device)  # (B, L)
    chosen = candidates & (scores < config.mask_prob)
    # guarantee one target per sequence that has a candidate: its lowest-scoring candidate
    has_candidate = candidates.any(1)  # (B,)
    fallback = scores.masked_fill(~candidates, 2.0).argmin(1)  # (B,)
    force = has_candidate & ~chosen.any(1)
    chosen[force, fallback[force]] = True
    kind = torch.rand(mask.shape, generator=generator).to(device)  # (B, L)
    to_mask = chosen & (kind < config.replace_mask)
    to_random = chosen & (kind >= config.replace_mask) & (kind < config.replace_mask + config.replace_random)
    return chosen, to_mask, to_random


class MaskedLanguageModel(nn.Module):
    """BERT's masked LM over a code tower; ``loss(batch)`` with ``{"input_ids", "attention_mask"}`` (B, L)."""

    def __init__(self, encoder: Tower, config: MLMConfig | None = None):
        super().__init__()
        if not hasattr(encoder, "contextualise") or type(encoder).__name__ == "NBoWTower":
            raise ValueError(f"masked LM needs a tower that contextualises tokens ('self-attention', 'cnn', "
                             f"'bigru', 'bilstm'), got {encoder.config.name!r}")
        if getattr(encoder, "causal", False):
            raise ValueError(f"masked LM on a causal tower ({encoder.config.name!r}) can only use the left context; "
                             "use 'self-attention' (or 'causal-lm' for this tower)")
        self.encoder = encoder
        self.config = config or MLMConfig()
        width = encoder.output_dim
        self.mask_embedding = nn.Parameter(torch.randn(width) * 0.02)  # the [MASK] vector (D,)
        self.transform = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.LayerNorm(width))
        self.output_bias = nn.Parameter(torch.zeros(encoder.embedding.num_embeddings))

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        ids, mask = batch["input_ids"], batch["attention_mask"]  # (B, L)
        chosen, to_mask, to_random = choose_mlm_positions(mask, self.config)
        vocab = self.encoder.embedding.num_embeddings
        random_ids = torch.randint(CLS_ID + 1, vocab, ids.shape, device=ids.device)  # never a special token
        corrupted = torch.where(to_random, random_ids, ids)  # (B, L)
        tokens = self.encoder.embedding(corrupted)  # (B, L, D)
        tokens = torch.where(to_mask.unsqueeze(-1), self.mask_embedding.to(tokens.dtype), tokens)
        states = self.encoder.contextualise(self.encoder.dropout(tokens), mask)  # (B, L, D)
        picked = self.transform(states[chosen])  # (N, D)
        if picked.shape[0] == 0:
            return states.sum() * 0.0, {"accuracy": 0.0, "masked_tokens": 0.0}
        # tied output layer, scaled by D^-1/2 (the towers' embeddings start at N(0, 1))
        logits = picked @ self.encoder.embedding.weight.T * self.encoder.output_dim ** -0.5 + self.output_bias  # (N, V)
        targets = ids[chosen]  # (N,)
        loss = F.cross_entropy(logits.float(), targets)
        accuracy = (logits.argmax(-1) == targets).float().mean().item()
        return loss, {"accuracy": accuracy, "masked_tokens": float(targets.numel())}


@dataclass
class MAEConfig:
    mask_ratio: float = 0.75
    decoder_width: int = 128
    decoder_layers: int = 2
    decoder_heads: int = 4
    norm_pix_loss: bool = True  # targets normalised per patch (mean 0, var 1)


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, patch * patch * C), patches in raster order (as the ViT's conv1 sees them)."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(patches: torch.Tensor, patch: int, channels: int = 3) -> torch.Tensor:
    """Inverse of :func:`patchify` for a square grid: (B, N, p*p*C) -> (B, C, H, W)."""
    b, n, _ = patches.shape
    g = int(round(n ** 0.5))
    x = patches.reshape(b, g, g, patch, patch, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, channels, g * patch, g * patch)


def random_masking(batch: int, num_patches: int, keep: int, device: torch.device,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample random subsets: ``(keep_index (B, keep), hidden (B, N) bool)``."""
    noise = torch.rand(batch, num_patches, generator=generator).to(device)  # (B, N)
    keep_index = noise.argsort(dim=1)[:, :keep]  # (B, keep)
    hidden = torch.ones(batch, num_patches, dtype=torch.bool, device=device)
    hidden.scatter_(1, keep_index, False)
    return keep_index, hidden


class MaskedAutoencoder(nn.Module):
    """MAE over an open_clip ``VisionTransformer`` tower (``tower.visual``); ``loss(images (B, 3, S, S))``."""

    def __init__(self, encoder: Tower, config: MAEConfig | None = None):
        super().__init__()
        visual = getattr(encoder, "visual", None)
        if visual is None or not hasattr(visual, "conv1") or not hasattr(visual, "class_embedding"):
            raise ValueError(f"MAE needs a ViT tower ('vit-tiny-64', 'vit-b-32'), got {encoder.config.name!r}")
        self.encoder = encoder
        self.config = config = config or MAEConfig()
        if not 0.0 < config.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {config.mask_ratio}")
        self.patch = visual.conv1.kernel_size[0]
        self.num_patches = visual.positional_embedding.shape[0] - 1
        width, dec = visual.conv1.out_channels, config.decoder_width
        self.decoder_embed = nn.Linear(width, dec)
        self.mask_token = nn.Parameter(torch.randn(dec) * 0.02)
        self.decoder_positions = nn.Parameter(torch.randn(self.num_patches + 1, dec) * 0.02)  # (1 + N, d)
        layer = nn.TransformerEncoderLayer(dec, config.decoder_heads, 4 * dec, 0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerEncoder(layer, config.decoder_layers, enable_nested_tensor=False)
        self.decoder_norm = nn.LayerNorm(dec)
        self.decoder_pred = nn.Linear(dec, self.patch * self.patch * 3)

    def encode_visible(self, images: torch.Tensor, keep_index: torch.Tensor) -> torch.Tensor:
        """The ViT on the kept patches only: (B, 3, S, S), (B, K) -> (B, 1 + K, width) after ``ln_post``."""
        visual = self.encoder.visual
        x = visual.conv1(images).flatten(2).transpose(1, 2)  # (B, N, width)
        x = x + visual.positional_embedding[1:].to(x.dtype)
        x = x.gather(1, keep_index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # (B, K, width)
        cls = (visual.class_embedding + visual.positional_embedding[0]).to(x.dtype).expand(x.shape[0], 1, -1)
        x = visual.ln_pre(torch.cat([cls, x], dim=1))  # (B, 1 + K, width)
        return visual.ln_post(visual.transformer(x))

    def reconstruct(self, images: torch.Tensor, generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted patches (B, N, p*p*3) and the hidden mask (B, N) for one random masking."""
        b = images.shape[0]
        keep = max(1, int(round(self.num_patches * (1 - self.config.mask_ratio))))
        keep_index, hidden = random_masking(b, self.num_patches, keep, images.device, generator)
        latent = self.decoder_embed(self.encode_visible(images, keep_index))  # (B, 1 + K, d)
        full = self.mask_token.to(latent.dtype).expand(b, self.num_patches, -1).clone()  # (B, N, d)
        full.scatter_(1, keep_index.unsqueeze(-1).expand(-1, -1, full.shape[-1]), latent[:, 1:])
        x = torch.cat([latent[:, :1], full], dim=1) + self.decoder_positions  # (B, 1 + N, d)
        x = self.decoder_norm(self.decoder(x))
        return self.decoder_pred(x[:, 1:]), hidden  # (B, N, p*p*3), (B, N)

    def targets(self, images: torch.Tensor) -> torch.Tensor:
        target = patchify(images, self.patch)  # (B, N, p*p*3)
        if self.config.norm_pix_loss:
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        return target

    def loss(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        prediction, hidden = self.reconstruct(images)
        per_patch = (prediction.float() - self.targets(images)).pow(2).mean(-1)  # (B, N)
        loss = (per_patch * hidden).sum() / hidden.sum()
        visible_error = (per_patch * ~hidden).sum() / (~hidden).sum().clamp(min=1)
        return loss, {"visible_patch_mse": visible_error.item()}
