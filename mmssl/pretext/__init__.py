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

:mod:`~mmssl.pretext.towers` adds the towers these need (``gpt``, ``wavenet``, ``pixelcnn-32``,
``vq-encoder-32``) to :data:`mmssl.encoders.TOWERS`; importing this package registers them.
:mod:`~mmssl.pretext.registry` holds ``METHODS``, the run config and :func:`pretrain`.
"""

from mmssl.pretext.towers import register_pretext_towers

register_pretext_towers()

from mmssl.pretext.autoregressive import BidirectionalLM, NextTokenPrediction, PixelCNN  # noqa: E402
from mmssl.pretext.masked import MaskedAutoencoder, MaskedLanguageModel  # noqa: E402
from mmssl.pretext.registry import METHODS, PretextRun, build_method, pretext_run_defaults, pretrain  # noqa: E402
from mmssl.pretext.relation import JigsawPuzzle, RotationPrediction  # noqa: E402
from mmssl.pretext.vqvae import VQVAE  # noqa: E402

__all__ = [
    "METHODS",
    "VQVAE",
    "BidirectionalLM",
    "JigsawPuzzle",
    "MaskedAutoencoder",
    "MaskedLanguageModel",
    "NextTokenPrediction",
    "PixelCNN",
    "PretextRun",
    "RotationPrediction",
    "build_method",
    "pretext_run_defaults",
    "pretrain",
    "register_pretext_towers",
]
