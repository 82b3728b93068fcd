"""Encoders: the towers of the dual encoders and the dual encoder itself.

* :mod:`~mmssl.encoders.tower`: the tower contract (``output_dim``, ``forward(inputs) -> (B, D)``,
  ``prepare``/``tokenize``/``transform``), :class:`TowerConfig`, locking, checkpoint initialisation;
* :mod:`~mmssl.encoders.image`: open_clip vision towers (tiny custom JSON configs, ViT-B-32);
* :mod:`~mmssl.encoders.text`: open_clip text transformer (CLIP BPE) and MiniLM;
* :mod:`~mmssl.encoders.code`: NBoW, 1D-CNN, biGRU/biLSTM, self-attention over
  :mod:`~mmssl.encoders.tokenizer` (the code subword tokenizer);
* :mod:`~mmssl.encoders.pretext_towers`: the towers built for the pretext tasks (GPT over code
  tokens, WaveNet over bytes, PixelCNN, the VQ-VAE encoder);
* :mod:`~mmssl.encoders.registry`: ``TOWERS`` (every tower, each saying what it reads) and ``build_tower``;
* :mod:`~mmssl.encoders.dual`: :class:`DualEncoder`, its config, save and load.
"""

from mmssl.encoders.dual import (
    DualEncoder,
    DualEncoderConfig,
    build_dual_encoder,
    load_dual_encoder,
    save_dual_encoder,
)
from mmssl.encoders.registry import TOWERS, build_tower, needs_code_tokenizer, takes_code_tokenizer
from mmssl.encoders.text import minilm_path
from mmssl.encoders.tokenizer import (
    encode_batch,
    load_code_tokenizer,
    save_code_tokenizer,
    train_code_tokenizer,
)
from mmssl.encoders.tower import Tower, TowerConfig, load_encoder_weights

__all__ = [
    "TOWERS",
    "DualEncoder",
    "DualEncoderConfig",
    "Tower",
    "TowerConfig",
    "build_dual_encoder",
    "build_tower",
    "encode_batch",
    "load_code_tokenizer",
    "load_dual_encoder",
    "load_encoder_weights",
    "minilm_path",
    "needs_code_tokenizer",
    "save_code_tokenizer",
    "save_dual_encoder",
    "takes_code_tokenizer",
    "train_code_tokenizer",
]
