"""What a generative pretext method learned, made visible: text samples and PNG image grids.

:func:`write_samples` dispatches on the method: causal LM / WaveNet / biLM continue a few code
prompts (``samples.txt``); the PixelCNN and the VQ-VAE prior draw images (``samples.png``, a grid);
the other methods are not generative and write nothing.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mmssl.io import atomic_path, write_text

CODE_PROMPTS = ("def ", "def parse_", "    return ", "class ", "import ", "for i in range(", "if not ", "    # ")


def save_image_grid(images: torch.Tensor, path: str | Path, columns: int = 8) -> Path:
    """(N, 3, S, S) images in [-1, 1] to one PNG grid (2 px white gaps), written atomically."""
    from PIL import Image
    from torchvision.utils import make_grid

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = make_grid(((images.detach().float().cpu().clamp(-1, 1) + 1) / 2), nrow=columns, padding=2, pad_value=1.0)
    array = (grid * 255).round().byte().permute(1, 2, 0).numpy()  # (H, W, 3)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    return path


def write_samples(method: nn.Module, run_dir: str | Path, count: int = 8, seed: int = 0) -> Path | None:
    """Write ``count`` samples of a generative method into ``run_dir``; None for the other methods."""
    from mmssl.pretext.autoregressive import (BidirectionalLM, NextTokenPrediction, PixelCNN, decode_sample,
                                              sample_bilm, sample_pixelcnn, sample_tokens)
    from mmssl.pretext.vqvae import VQVAE, sample_vqvae

    run_dir = Path(run_dir)
    prompts = [CODE_PROMPTS[i % len(CODE_PROMPTS)] for i in range(count)]
    if isinstance(method, NextTokenPrediction):
        texts = [decode_sample(method.encoder, ids) for ids in sample_tokens(method, prompts, seed=seed)]
    elif isinstance(method, BidirectionalLM):
        texts = sample_bilm(method, prompts, seed=seed)
    elif isinstance(method, PixelCNN):
        return save_image_grid(sample_pixelcnn(method, count, seed=seed), run_dir / "samples.png")
    elif isinstance(method, VQVAE) and method.prior is not None:
        return save_image_grid(sample_vqvae(method, count, seed=seed), run_dir / "samples.png")
    else:
        return None
    path = run_dir / "samples.txt"
    body = "".join(f"--- prompt {p!r}\n{t}\n\n" for p, t in zip(prompts, texts))
    return write_text(path, body)
