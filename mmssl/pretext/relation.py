"""Innate-relationship pretext tasks: classify a transformation applied to the image.

* :class:`RotationPrediction` (RotNet, Gidaris et al. 2018): every image is shown at 0, 90, 180
  and 270 degrees; a linear head on the tower's features names the rotation (4-way).
* :class:`JigsawPuzzle` (Noroozi & Favaro 2016): the image is cut into a 3x3 grid; each cell gives
  a randomly placed tile smaller than the cell (the gap stops edge-continuity shortcuts); the tiles
  are shuffled by one permutation from a fixed set chosen for maximal Hamming distance
  (:func:`maximal_hamming_permutations`); the shared tower encodes each tile (resized to its input
  size), the nine features are concatenated in shuffled order and an MLP names the permutation.

Both take any image tower (``vit-tiny-64``, ``resnet-tiny-64``, ``vq-encoder-32``, ...) and batches of
(B, 3, S, S) images from the tower's ``transform``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmssl.encoders.tower import Tower


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(-1) == labels).float().mean().item()


class RotationPrediction(nn.Module):
    """RotNet: ``loss(images (B, 3, S, S))`` classifies the 4 rotations of every image (a 4B batch)."""

    def __init__(self, encoder: Tower):
        super().__init__()
        if encoder.modality != "image":
            raise ValueError(f"rotation prediction needs an image tower, got {encoder.config.name!r}")
        self.encoder = encoder
        self.head = nn.Linear(encoder.output_dim, 4)

    def loss(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        b = images.shape[0]
        rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])  # (4B, 3, S, S)
        labels = torch.arange(4, device=images.device).repeat_interleave(b)  # (4B,)
        logits = self.head(self.encoder(rotated))  # (4B, 4)
        loss = F.cross_entropy(logits.float(), labels)
        return loss, {"accuracy": _accuracy(logits, labels)}


def maximal_hamming_permutations(count: int, tiles: int = 9, seed: int = 0) -> torch.Tensor:
    """``count`` permutations of ``range(tiles)`` chosen greedily for maximal minimum Hamming distance.

    Noroozi & Favaro's algorithm: start from a random permutation, then repeatedly add the
    permutation whose minimum distance to the chosen set is largest (ties: the first). Exact over
    all ``tiles!`` candidates (362,880 for 9 tiles).

    Returns:
        (count, tiles) int64; row 0 is a random permutation, no row repeats.
    """
    if not 1 <= count <= 1000:
        raise ValueError(f"count must be in [1, 1000], got {count}")
    candidates = np.array(list(permutations(range(tiles))), dtype=np.int8)  # (T!, tiles)
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(candidates)))]
    min_distance = np.full(len(candidates), tiles + 1, dtype=np.int16)  # (T!,)
    for _ in range(count - 1):
        distance = (candidates != candidates[chosen[-1]]).sum(1)  # (T!,)
        np.minimum(min_distance, distance, out=min_distance)
        chosen.append(int(min_distance.argmax()))
    return torch.from_numpy(candidates[chosen].astype(np.int64))


def minimum_hamming_distance(perms: torch.Tensor) -> int:
    """Smallest Hamming distance between two rows of ``perms`` (P, T)."""
    distance = (perms[:, None, :] != perms[None, :, :]).sum(-1)  # (P, P)
    distance.fill_diagonal_(perms.shape[1] + 1)
    return int(distance.min())


@dataclass
class JigsawConfig:
    num_permutations: int = 30  # size of the maximal-Hamming permutation set (the paper: 100-1000)
    tile_fraction: float = 0.8  # tile side / cell side: the random gap between tiles
    hidden: int = 256  # MLP width over the 9 concatenated tile features
    seed: int = 0  # permutation-set seed (saved in the checkpoint as a buffer)


class JigsawPuzzle(nn.Module):
    """``loss(images (B, 3, S, S))``: shuffle 3x3 tiles by a set permutation, predict which (P-way)."""

    grid = 3

    def __init__(self, encoder: Tower, config: JigsawConfig | None = None):
        super().__init__()
        if encoder.modality != "image":
            raise ValueError(f"the jigsaw puzzle needs an image tower, got {encoder.config.name!r}")
        self.encoder = encoder
        self.config = config = config or JigsawConfig()
        if not 0.3 <= config.tile_fraction <= 1.0:
            raise ValueError(f"tile_fraction must be in [0.3, 1], got {config.tile_fraction}")
        self.register_buffer("permutations", maximal_hamming_permutations(config.num_permutations, 9, config.seed))
        tiles = self.grid * self.grid
        self.head = nn.Sequential(nn.Linear(tiles * encoder.output_dim, config.hidden), nn.ReLU(),
                                  nn.Linear(config.hidden, config.num_permutations))

    def make_tiles(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, 9, 3, S, S): one randomly placed tile per cell, raster order, resized to S."""
        b, c, size, _ = images.shape
        cell = size // self.grid
        tile = max(2, int(cell * self.config.tile_fraction))
        offsets = torch.randint(0, cell - tile + 1, (2, b, self.grid * self.grid))  # (2, B, 9)
        rows = torch.arange(self.grid).repeat_interleave(self.grid) * cell  # (9,) cell tops
        cols = torch.arange(self.grid).repeat(self.grid) * cell  # (9,) cell lefts
        top = (rows + offsets[0]).to(images.device)  # (B, 9)
        left = (cols + offsets[1]).to(images.device)  # (B, 9)
        span = torch.arange(tile, device=images.device)  # (t,)
        y = (top[..., None] + span)[..., :, None].expand(-1, -1, tile, tile)  # (B, 9, t, t)
        x = (left[..., None] + span)[..., None, :].expand(-1, -1, tile, tile)  # (B, 9, t, t)
        batch = torch.arange(b, device=images.device)[:, None, None, None].expand_as(y)
        crops = images.permute(0, 2, 3, 1)[batch, y, x]  # (B, 9, t, t, 3)
        crops = crops.permute(0, 1, 4, 2, 3).reshape(b * 9, c, tile, tile)
        resized = F.interpolate(crops, size=(size, size), mode="bilinear", align_corners=False)
        return resized.view(b, 9, c, size, size)

    def loss(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        b = images.shape[0]
        tiles = self.make_tiles(images)  # (B, 9, 3, S, S)
        labels = torch.randint(0, len(self.permutations), (b,), device=images.device)  # (B,)
        order = self.permutations[labels]  # (B, 9): position k shows tile order[k]
        shuffled = tiles[torch.arange(b, device=images.device)[:, None], order]  # (B, 9, 3, S, S)
        features = self.encoder(shuffled.flatten(0, 1)).view(b, -1)  # (B, 9 * D)
        logits = self.head(features)  # (B, P)
        loss = F.cross_entropy(logits.float(), labels)
        return loss, {"accuracy": _accuracy(logits, labels)}
