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

A user's own open_clip weights come from a local file named by a spec
``open_clip:ARCH:/path/weights.(safetensors|pt)`` (:func:`load_open_clip_model`; ``.pt`` is read
with ``torch.load(weights_only=True)``). An image tower built with ``pretrained`` set to such a
spec starts from that file's ``visual`` weights.

Corpus images are 128x128 RGB; the transforms resize them to the tower's size and normalise with
CLIP's mean and std.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from tokenizers import Tokenizer
from torchvision import transforms

from mmssl.encoders.tower import Tower, TowerConfig, finish_tower, state_differences
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

    def __init__(self, config: TowerConfig, model_name: str, clip=None):
        super().__init__(config)
        import open_clip  # imported on use: code-only users never pay its import time

        clip = clip if clip is not None else create_open_clip_model(model_name)
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
    if is_open_clip_spec(config.pretrained):  # the user's own weights file: its visual tower, then lock etc.
        clip = load_open_clip_model(config.pretrained)
        tower = OpenClipImageTower(config, model_name, clip=clip)
        return finish_tower(tower, replace(config, pretrained="scratch"))
    return finish_tower(OpenClipImageTower(config, model_name), config)


OPEN_CLIP_PREFIX = "open_clip:"
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


class WeightsFileError(ValueError):
    """A user's weights file cannot be used (missing, unknown architecture, wrong format or shapes)."""


def is_open_clip_spec(spec) -> bool:
    return isinstance(spec, str) and spec.startswith(OPEN_CLIP_PREFIX)


def parse_open_clip_spec(spec: str) -> tuple[str, Path]:
    """``"open_clip:ARCH:/path/weights.safetensors"`` -> (ARCH, absolute weights path), checked.

    Raises:
        WeightsFileError: a malformed spec, an architecture open_clip does not know, a missing file
            or one that is neither safetensors nor a torch pickle (the message names the fix).
    """
    import open_clip

    parts = spec[len(OPEN_CLIP_PREFIX):].split(":", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise WeightsFileError(f"{spec!r} is not an open_clip model spec; write open_clip:ARCH:/path/to/weights"
                               ".safetensors (e.g. open_clip:ViT-B-32:/models/vit-b-32.safetensors)")
    arch, file = parts[0], Path(parts[1]).expanduser().absolute()
    register_model_configs()
    known = open_clip.list_models()
    if arch not in known:
        close = [name for name in known if name.lower().startswith(arch.lower()[:5])][:8] or known[:8]
        raise WeightsFileError(f"{spec!r}: open_clip knows no architecture {arch!r}; use one of "
                               f"open_clip.list_models(), e.g. {', '.join(close)}")
    if not file.is_file():
        raise WeightsFileError(f"{spec!r}: no weights file at {file}; give the path of a local .safetensors or .pt "
                               "file (nothing is downloaded)")
    if file.suffix.lower() not in WEIGHT_SUFFIXES:
        raise WeightsFileError(f"{spec!r}: {file.name} is not a weights file; use a .safetensors file, or a .pt/"
                               ".pth/.bin torch state dict")
    return arch, file


def read_state_dict(file: Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a torch pickle (``weights_only``: no code runs), prefixes stripped.

    open_clip's training checkpoints wrap it as ``{"state_dict": ...}`` with DDP's ``module.`` prefix.
    """
    try:
        if file.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(file))
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # safetensors, pickle and zip errors have no common base
        raise WeightsFileError(f"{file} cannot be read as {file.suffix} weights ({type(e).__name__}: {e}); "
                               "save a state dict with safetensors.torch.save_file or torch.save") from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsFileError(f"{file} holds no state dict of tensors; save model.state_dict()")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_open_clip_model(spec: str):
    """The open_clip model of ``spec`` (``open_clip:ARCH:FILE``) with the file's weights, in eval mode.

    Raises:
        WeightsFileError: see :func:`parse_open_clip_spec`, or the file's tensors do not fit ARCH.
    """
    arch, file = parse_open_clip_spec(spec)
    clip = create_open_clip_model(arch)
    state = read_state_dict(file)
    missing, unexpected, mismatched = state_differences(clip.state_dict(), state, "file", arch)
    if missing or unexpected or mismatched:
        raise WeightsFileError(f"{file} does not fit open_clip {arch!r} (missing {missing[:3]}, unexpected "
                               f"{unexpected[:3]}, shape mismatch {mismatched[:3]}); name the architecture the "
                               "weights were trained as (open_clip:ARCH:FILE)")
    clip.load_state_dict(state)
    return clip.eval()
