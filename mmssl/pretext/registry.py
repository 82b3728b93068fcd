"""Every pretext method by name: ``METHODS[name]`` gives how to build it around a tower, its default
encoder tower, its data (images or strings) and its learning rate. :func:`build_method` builds one.

The run recipe (typed run config, corpus -> Trainer -> checkpoint) is :mod:`mmssl.recipes.pretext`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Literal

from torch import nn

from mmssl.encoders.tower import TowerConfig
from mmssl.kinds import MODALITY_IMAGE, MODALITY_TEXT
from mmssl.pretext.autoregressive import BidirectionalLM, NextTokenPrediction, PixelCNN
from mmssl.pretext.data import TextSource
from mmssl.pretext.masked import MaskedAutoencoder, MaskedLanguageModel
from mmssl.pretext.relation import JigsawPuzzle, RotationPrediction
from mmssl.pretext.vqvae import VQVAE


@dataclass(frozen=True)
class MethodSpec:
    """What a method is: how to build it from (encoder, run), its default tower, what it reads."""

    build: Callable[[nn.Module, Any], nn.Module]  # (encoder, run config: mmssl.recipes.pretext.PretextRun)
    encoder: TowerConfig
    data: Literal["images", "text"]
    description: str
    text: TextSource = "code"
    lr: float = 1e-3


def _code_tower(name: str, **kw) -> TowerConfig:
    return TowerConfig(name=name, width=kw.pop("width", 128), layers=kw.pop("layers", 2), max_length=128,
                       dropout=0.1, **kw)


METHODS: dict[str, MethodSpec] = {
    "causal-lm": MethodSpec(lambda e, r: NextTokenPrediction(e), _code_tower("gpt"), "text",
                            "GPT-style causal language model over code tokens"),
    "wavenet": MethodSpec(lambda e, r: NextTokenPrediction(e),
                          TowerConfig(name="wavenet", width=64, layers=8, kernel_size=2, max_length=256, dropout=0.0),
                          "text", "WaveNet dilated causal convolutions over code bytes"),
    "bilm": MethodSpec(lambda e, r: BidirectionalLM(e), _code_tower("bigru", layers=1), "text",
                       "ELMo-style bidirectional RNN language model (forward: next token, backward: previous)"),
    "pixelcnn": MethodSpec(lambda e, r: PixelCNN(e), TowerConfig(name="pixelcnn-32", width=64, layers=5, kernel_size=3),
                           "images", "gated PixelCNN (no blind spot), 8 levels per channel, 32 px"),
    "mlm": MethodSpec(lambda e, r: MaskedLanguageModel(e, r.mlm), _code_tower("self-attention"), "text",
                      "BERT masked language model (15%, 80/10/10) on code or captions"),
    "mae": MethodSpec(lambda e, r: MaskedAutoencoder(e, r.mae), TowerConfig(name="vit-tiny-64"), "images",
                      "masked autoencoder: 75% of patches hidden, encoder on visible patches, normalised pixels"),
    "rotation": MethodSpec(lambda e, r: RotationPrediction(e), TowerConfig(name="resnet-tiny-64"), "images",
                           "RotNet: predict the rotation (0/90/180/270)"),
    "jigsaw": MethodSpec(lambda e, r: JigsawPuzzle(e, r.jigsaw), TowerConfig(name="resnet-tiny-64"), "images",
                         "3x3 jigsaw: predict the permutation from a maximal-Hamming set"),
    "vqvae": MethodSpec(lambda e, r: VQVAE(e, r.vqvae), TowerConfig(name="vq-encoder-32", width=64, layers=2),
                        "images", "VQ-VAE (EMA codebook, dead-code restarts) + transformer prior over codes", lr=2e-3),
    "vqgan": MethodSpec(lambda e, r: VQVAE(e, dataclasses.replace(r.vqvae, adversarial=True)),
                        TowerConfig(name="vq-encoder-32", width=64, layers=2), "images",
                        "VQ-GAN: the VQ-VAE + PatchGAN hinge loss (no perceptual loss)", lr=2e-3),
}


def build_method(run, tokenizer=None) -> nn.Module:
    """The method module of ``run`` (a :class:`mmssl.recipes.pretext.PretextRun`: its ``method``,
    ``encoder`` and method options) around a freshly built ``run.encoder`` tower."""
    from mmssl.encoders.registry import build_tower

    if run.method not in METHODS:
        raise KeyError(f"unknown pretext method {run.method!r}; known: {', '.join(METHODS)}")
    spec = METHODS[run.method]
    encoder = build_tower(run.encoder, tokenizer)
    if encoder.locked:
        raise ValueError("the encoder to pretrain is locked (encoder.locked = true); nothing would learn")
    wanted = MODALITY_IMAGE if spec.data == "images" else MODALITY_TEXT
    if encoder.modality != wanted:
        raise ValueError(f"{run.method} reads {spec.data}, but tower {run.encoder.name!r} encodes {encoder.modality}; "
                         f"its default tower is {spec.encoder.name!r}")
    return spec.build(encoder, run)
