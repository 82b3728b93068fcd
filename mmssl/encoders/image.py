"""Image towers: open_clip vision towers built by name from JSON model configs, trained from scratch.

open_clip's factory builds a whole CLIP model from a JSON config; we keep its ``visual`` tower
(ViT or ModifiedResNet, pooled and projected to the config's ``embed_dim``) and drop the rest. Our
own configs live in ``model_configs/`` and are registered with ``open_clip.add_model_config`` on
first use:

* ``vit-tiny-64``: ViT, 64 px, patch 8 (64 patches), width 192, 4 layers; trains on 2 CPU cores;
* ``resnet-tiny-64``: ModifiedResNet (CLIP's ResNet: 3-conv stem, anti-aliased strides,
  attention pooling), 64 px, one bottleneck per stage, base width 16;
* ``ViT-B-32``: the standard CLIP image tower at 224 px, for GPU users (random init, nothing is
  downloaded).

Corpus images are 128x128 RGB; the transforms resize them to the tower's size and normalise with
CLIP's mean and std.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from tokenizers import Tokenizer
from torchvision import transforms

from mmssl.encoders.tower import Tower, TowerConfig, finish_tower
from mmssl.kinds import IMAGES

MODEL_CONFIGS = Path(__file__).parent / "model_configs"


def register_model_configs() -> None:
    """Make our JSON configs (``model_configs/*.json``) known to open_clip's factory (idempotent)."""
    import open_clip

    ours = {p.stem for p in MODEL_CONFIGS.glob("*.json")}
    if not ours <= set(open_clip.list_models()):
        open_clip.add_model_config(MODEL_CONFIGS)


class _DropRandomInitNotice(logging.Filter):
    """open_clip warns "No pretrained weights loaded ... initialized randomly" for ``pretrained=None``,
    which is how every mmssl tower is built: its weights load right after, or it trains from scratch."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded")


def create_open_clip_model(model_name: str, **kwargs):
    """``open_clip.create_model(model_name, pretrained=None, **kwargs)`` without its random-init notice."""
    import open_clip  # imported on use: code-only users never pay its import time

    register_model_configs()
    notice = _DropRandomInitNotice()
    root = logging.getLogger()  # open_clip logs through the root logger
    root.addFilter(notice)
    try:
        return open_clip.create_model(model_name, pretrained=None, **kwargs)
    finally:
        root.removeFilter(notice)


def _to_rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


class OpenClipImageTower(Tower):
    """The ``visual`` tower of an open_clip model: (B, 3, S, S) images -> (B, embed_dim) features."""

    modality = "image"
    reads = IMAGES

    def __init__(self, config: TowerConfig, model_name: str):
        super().__init__(config)
        import open_clip  # imported on use: code-only users never pay its import time

        clip = create_open_clip_model(model_name)
        self.visual = clip.visual
        self.output_dim = int(clip.visual.output_dim)
        size = clip.visual.image_size  # ViT: (H, W); ModifiedResNet: an int
        self.image_size = int(size if isinstance(size, int) else size[0])
        self.mean = tuple(clip.visual.preprocess_cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
        self.std = tuple(clip.visual.preprocess_cfg.get("std", open_clip.OPENAI_DATASET_STD))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual(images)  # (B, 3, S, S) -> (B, D)

    def transform(self, train: bool) -> Callable[[Image.Image], torch.Tensor]:
        """PIL image -> (3, S, S) normalised tensor; ``train`` adds crop, flip and colour jitter.

        The crop keeps 60-100% of the area: our images are centred single objects, and tighter
        crops would cut the object the caption names away.
        """
        size = self.image_size
        resample = transforms.InterpolationMode.BICUBIC
        normalise = [transforms.ToTensor(), transforms.Normalize(self.mean, self.std)]
        if not train:
            return transforms.Compose([_to_rgb, transforms.Resize(size, interpolation=resample),
                                       transforms.CenterCrop(size), *normalise])
        flip = [transforms.RandomHorizontalFlip()] if self.config.hflip else []
        return transforms.Compose([
            _to_rgb,
            transforms.RandomResizedCrop(size, scale=(0.6, 1.0), interpolation=resample),
            *flip,
            transforms.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
            *normalise,
        ])

    def prepare(self, raw_items: list[Image.Image]) -> torch.Tensor:
        transform = self.transform(train=False)
        return torch.stack([transform(image) for image in raw_items])  # (B, 3, S, S)


def build_open_clip_image_tower(config: TowerConfig, tokenizer: Tokenizer | None = None, *,
                                model_name: str) -> OpenClipImageTower:
    if tokenizer is not None:
        raise ValueError(f"tower {config.name!r} takes images; it has no use for a tokenizer")
    return finish_tower(OpenClipImageTower(config, model_name), config)
