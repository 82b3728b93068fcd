"""Towers built for the pretext tasks (:mod:`mmssl.pretext`), listed in :data:`mmssl.encoders.TOWERS`.

Every one follows the tower contract (:mod:`mmssl.encoders.tower`: ``output_dim``, pooled
``forward``, ``prepare``, ``encode``, locking, ``pretrained=<checkpoint>``), so a pretext checkpoint
initialises it inside a dual encoder like any other tower:

* ``gpt``: the ``self-attention`` code tower with a causal mask (GPT-style), over the code
  tokenizer; pooled by masked mean over causal states;
* ``wavenet``: a stack of gated, dilated, causal 1-D convolutions (WaveNet, van den Oord et al.
  2016) over the UTF-8 **bytes** of a string: no tokenizer, every script and identifier is covered;
* ``pixelcnn-32``: a gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with
  PixelCNN Decoders"): vertical + horizontal stacks, so the receptive field has no blind spot;
  images are quantised to ``levels`` values per channel; pooled by the mean of the last
  horizontal-stack map;
* ``vq-encoder-32``: the VQ-VAE's convolutional encoder (4x down-sampling, residual blocks); pooled
  by the spatial mean of its (B, width, 8, 8) map.

Image towers here take any PIL image: ``to_square_rgb`` fits it in the square (aspect kept),
flattens transparency onto white and converts grayscale/palette images, so odd sizes, ``L`` and
``RGBA`` inputs all become (3, S, S).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from PIL import Image
from tokenizers import Tokenizer
from torch import nn
from torchvision import transforms

from mmssl.data.imageio import to_square_rgb
from mmssl.encoders.code import SelfAttentionTower, SequencePooling, resolve_code_tokenizer
from mmssl.encoders.tokenizer import pad_token_rows
from mmssl.encoders.tower import Tower, TowerConfig, finish_tower
from mmssl.kinds import BYTES, IMAGES

# -- sequences ---------------------------------------------------------------------------------


class CausalSelfAttentionTower(SelfAttentionTower):
    """``self-attention`` with a causal mask: position t attends to positions <= t only."""

    causal = True

    def contextualise(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=tokens.device).triu(1)  # (L, L), True = hidden
        x = tokens + self.positions[:length]  # (B, L, D)
        # right padding: every query row still sees its own real prefix, so no row is all-masked
        x = self.encoder(x, mask=causal, src_key_padding_mask=~mask.bool())  # (B, L, D)
        return self.norm(x)


BYTE_PAD, BYTE_START, BYTE_OFFSET = 0, 1, 2  # id = byte + 2
BYTE_VOCAB = 256 + BYTE_OFFSET


def encode_bytes(texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    """UTF-8 bytes of ``texts`` as ids ``[START] + (byte + 2)``, truncated to ``max_length``, right-padded.

    Returns ``input_ids`` and ``attention_mask``, both (B, L) int64 with ``L <= max_length``; an empty
    string is the single ``[START]`` token.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    rows = [[BYTE_START] + [b + BYTE_OFFSET for b in t.encode("utf-8", errors="replace")[: max_length - 1]]
            for t in texts]
    return pad_token_rows(rows, BYTE_PAD)


def decode_bytes(ids: list[int]) -> str:
    """Inverse of :func:`encode_bytes` for one row (special ids dropped, invalid UTF-8 replaced)."""
    return bytes(i - BYTE_OFFSET for i in ids if i >= BYTE_OFFSET).decode("utf-8", errors="replace")


class WaveNetTower(Tower):
    """Gated dilated causal convolutions over bytes (WaveNet's residual + skip architecture).

    Layer l has dilation ``2 ** (l % 8)`` and kernel ``kernel_size``: ``layers = 8``, ``kernel_size = 2``
    sees 256 bytes back. Each block: ``z = tanh(W_f * x) * sigmoid(W_g * x)`` (causal: left padding
    only), ``x <- x + W_r z``, ``skip += W_s z``. The token states are ``relu(skip)`` (B, L, D).
    """

    modality = "text"
    reads = BYTES
    causal = True
    vocab_size = BYTE_VOCAB

    def __init__(self, config: TowerConfig):
        super().__init__(config)
        width = config.width
        self.embedding = nn.Embedding(BYTE_VOCAB, width, padding_idx=BYTE_PAD)
        self.dilations = [2 ** (layer % 8) for layer in range(config.layers)]
        self.filters = nn.ModuleList(nn.Conv1d(width, 2 * width, config.kernel_size, dilation=d)
                                     for d in self.dilations)
        # the last block's output only feeds the skip sum: it has no residual projection
        self.residuals = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in self.dilations[:-1])
        self.skips = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in self.dilations)
        self.dropout = nn.Dropout(config.dropout)
        self.pool = SequencePooling(config.pooling, width)
        self.output_dim = width

    @property
    def receptive_field(self) -> int:
        return (self.config.kernel_size - 1) * sum(self.dilations) + 1

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return encode_bytes(texts, self.config.max_length)

    prepare = tokenize

    def contextualise(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, D) embedded bytes -> (B, L, D) causal states (position t sees bytes <= t)."""
        keep = mask.unsqueeze(1).to(tokens.dtype)  # (B, 1, L)
        x = tokens.transpose(1, 2) * keep  # (B, D, L)
        skip = torch.zeros_like(x)
        for layer, (conv, skip_conv, dilation) in enumerate(zip(self.filters, self.skips, self.dilations)):
            padded = F.pad(x, ((self.config.kernel_size - 1) * dilation, 0))  # left only: causal
            filt, gate = conv(padded).chunk(2, dim=1)  # (B, D, L) each
            z = self.dropout(torch.tanh(filt) * torch.sigmoid(gate))
            skip = skip + skip_conv(z)
            if layer < len(self.residuals):
                x = (x + self.residuals[layer](z)) * keep
        return F.relu(skip * keep).transpose(1, 2)  # (B, L, D)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = inputs["attention_mask"]  # (B, L)
        tokens = self.dropout(self.embedding(inputs["input_ids"]))  # (B, L, D)
        return self.pool(self.contextualise(tokens, mask), mask)  # (B, D)


# -- images ------------------------------------------------------------------------------------


def square_image_transform(size: int, train: bool, hflip: bool, levels: int | None = None
                           ) -> Callable[[Image.Image], torch.Tensor]:
    """Any PIL image -> (3, size, size) float in [-1, 1]; ``levels`` quantises each channel to that
    many values (bin centres), as the PixelCNN's discrete likelihood needs."""

    def transform(image: Image.Image) -> torch.Tensor:
        image = to_square_rgb(image, size)
        if train and hflip and torch.rand(()) < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        x = transforms.functional.pil_to_tensor(image).float() / 255.0  # (3, S, S) in [0, 1]
        if levels is not None:
            x = (torch.floor(x * levels).clamp(max=levels - 1) + 0.5) / levels
        return x * 2 - 1

    return transform


class SquareImageTower(Tower):
    """Image towers over (3, S, S) tensors in [-1, 1] made by :func:`square_image_transform`."""

    modality = "image"
    reads = IMAGES
    levels: int | None = None

    def __init__(self, config: TowerConfig, image_size: int):
        super().__init__(config)
        self.image_size = image_size

    def transform(self, train: bool) -> Callable[[Image.Image], torch.Tensor]:
        return square_image_transform(self.image_size, train, self.config.hflip, self.levels)

    def prepare(self, raw_items: list[Image.Image]) -> torch.Tensor:
        transform = self.transform(train=False)
        return torch.stack([transform(image) for image in raw_items])  # (B, 3, S, S)

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, output_dim, h, w)."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.feature_map(images).mean(dim=(2, 3))  # (B, D)


class GatedMaskedConv(nn.Module):
    """One gated PixelCNN layer: a vertical stack (rows above) and a horizontal stack (left, same row).

    The vertical conv at row i covers rows ``i - k//2 .. i``; it reaches the horizontal stack only
    shifted down one row, so pixel (i, j) sees rows < i in full width (no blind spot). The horizontal
    conv covers columns ``j - k//2 .. j``; in the first layer (``first``) its input is shifted right one
    column so that pixel (i, j) never sees itself.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int, first: bool):
        super().__init__()
        half = kernel_size // 2
        self.half, self.first = half, first
        self.vertical = nn.Conv2d(in_channels, 2 * channels, (half + 1, kernel_size))
        self.horizontal = nn.Conv2d(in_channels, 2 * channels, (1, half + 1))
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal_out = nn.Conv2d(channels, channels, 1)

    @staticmethod
    def _gate(x: torch.Tensor) -> torch.Tensor:
        filt, gate = x.chunk(2, dim=1)
        return torch.tanh(filt) * torch.sigmoid(gate)

    def forward(self, vertical: torch.Tensor, horizontal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.half
        v = self.vertical(F.pad(vertical, (half, half, half, 0)))  # (B, 2C, H, W): rows i-half..i
        v_down = F.pad(v, (0, 0, 1, 0))[:, :, :-1]  # (B, 2C, H, W): rows i-half-1..i-1
        h_in = F.pad(horizontal, (1, 0))[:, :, :, :-1] if self.first else horizontal  # first: shift right
        h = self.horizontal(F.pad(h_in, (half, 0)))  # (B, 2C, H, W): columns j-half..j
        h = self.horizontal_out(self._gate(h + self.vertical_to_horizontal(v_down)))  # (B, C, H, W)
        if not self.first:
            h = h + horizontal  # residual (the first layer's input is the image itself)
        return self._gate(v), h


class PixelCNNTower(SquareImageTower):
    """Gated PixelCNN stack: ``layers`` gated layers of ``width`` channels, kernel ``kernel_size``.

    ``feature_map`` (B, width, S, S): position (i, j) depends only on pixels before (i, j) in raster
    order. The three channels of one pixel are predicted independently given the previous pixels
    (no R->G->B masking within a pixel): a documented simplification of the full PixelCNN.
    """

    causal = True

    def __init__(self, config: TowerConfig, image_size: int, levels: int):
        super().__init__(config, image_size)
        if config.kernel_size % 2 == 0 or config.kernel_size < 3:
            raise ValueError(f"pixelcnn kernel_size must be odd and >= 3, got {config.kernel_size}")
        if config.layers < 1:
            raise ValueError(f"pixelcnn needs at least one layer, got {config.layers}")
        self.levels = levels
        self.layers = nn.ModuleList(
            GatedMaskedConv(3 if i == 0 else config.width, config.width, config.kernel_size if i else 7, first=i == 0)
            for i in range(config.layers))
        self.output_dim = config.width

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        vertical = horizontal = images  # (B, 3, S, S)
        for layer in self.layers:
            vertical, horizontal = layer(vertical, horizontal)
        return horizontal  # (B, C, S, S)


class ResidualBlock(nn.Module):
    """relu -> 3x3 conv -> relu -> 1x1 conv, added to the input (the VQ-VAE paper's block)."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class VQEncoderTower(SquareImageTower):
    """The VQ-VAE encoder: two stride-2 4x4 convs (S -> S/4), a 3x3 conv, ``layers`` residual blocks.

    ``feature_map``: (B, width, S/4, S/4), the grid the VQ-VAE quantises (after its own 1x1 projection).
    """

    def __init__(self, config: TowerConfig, image_size: int):
        super().__init__(config, image_size)
        if image_size % 4:
            raise ValueError(f"the VQ encoder down-samples 4x; image_size must be a multiple of 4, got {image_size}")
        width = config.width
        self.stem = nn.Sequential(nn.Conv2d(3, width // 2, 4, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(width // 2, width, 4, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1))
        self.blocks = nn.Sequential(*(ResidualBlock(width) for _ in range(config.layers)), nn.ReLU())
        self.output_dim = width

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(images))  # (B, 3, S, S) -> (B, D, S/4, S/4)


# -- registration ------------------------------------------------------------------------------


def _no_tokenizer(config: TowerConfig, tokenizer: Tokenizer | None) -> None:
    if tokenizer is not None:
        raise ValueError(f"tower {config.name!r} brings its own input format; it has no use for a tokenizer")


def build_gpt_tower(config: TowerConfig, tokenizer: Tokenizer | None = None) -> CausalSelfAttentionTower:
    return finish_tower(CausalSelfAttentionTower(config, resolve_code_tokenizer(config, tokenizer)), config)


def build_wavenet_tower(config: TowerConfig, tokenizer: Tokenizer | None = None) -> WaveNetTower:
    _no_tokenizer(config, tokenizer)
    return finish_tower(WaveNetTower(config), config)


def build_pixelcnn_tower(config: TowerConfig, tokenizer: Tokenizer | None = None, *, image_size: int,
                         levels: int) -> PixelCNNTower:
    _no_tokenizer(config, tokenizer)
    return finish_tower(PixelCNNTower(config, image_size, levels), config)


def build_vq_encoder_tower(config: TowerConfig, tokenizer: Tokenizer | None = None, *,
                           image_size: int) -> VQEncoderTower:
    _no_tokenizer(config, tokenizer)
    return finish_tower(VQEncoderTower(config, image_size), config)

