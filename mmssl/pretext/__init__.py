"""Self-prediction pretext tasks: predict one part of a sample from another, to pretrain a tower.

Every method is an ``nn.Module`` with the tower at ``.encoder`` and ``loss(batch) -> (loss, logs)``,
so the one trainer trains all of them and any checkpoint initialises a dual-encoder tower
(``TowerConfig(name=..., pretrained=<run folder>)``):

* autoregressive (:mod:`~mmssl.pretext.autoregressive`): ``causal-lm`` (GPT over code tokens),
  ``wavenet`` (dilated causal convolutions over bytes), ``bilm`` (ELMo-style RNN LM),
  ``pixelcnn`` (gated PixelCNN over images);
* masked (:mod:`~mmssl.pretext.masked`): ``mlm`` (BERT, code or captions), ``mae`` (ViT);
* relation (:mod:`~mmssl.pretext.relation`): ``rotation`` (RotNet), ``jigsaw`` (3x3, maximal Hamming);
* hybrid (:mod:`~mmssl.pretext.vqvae`): ``vqvae`` (EMA codebook + transformer prior), ``vqgan``.

The towers these need (``gpt``, ``wavenet``, ``pixelcnn-32``, ``vq-encoder-32``) live with every
other tower in :data:`mmssl.encoders.TOWERS` (:mod:`mmssl.encoders.pretext_towers`).
:mod:`~mmssl.pretext.registry` holds ``METHODS`` and :func:`build_method`; the run recipe (config,
:func:`~mmssl.recipes.pretext.pretrain`) is :mod:`mmssl.recipes.pretext`.
"""

from mmssl.pretext.autoregressive import BidirectionalLM, NextTokenPrediction, PixelCNN
from mmssl.pretext.masked import MaskedAutoencoder, MaskedLanguageModel
from mmssl.pretext.registry import METHODS, build_method
from mmssl.pretext.relation import JigsawPuzzle, RotationPrediction
from mmssl.pretext.vqvae import VQVAE

__all__ = [
    "METHODS",
    "VQVAE",
    "BidirectionalLM",
    "JigsawPuzzle",
    "MaskedAutoencoder",
    "MaskedLanguageModel",
    "NextTokenPrediction",
    "PixelCNN",
    "RotationPrediction",
    "build_method",
]
