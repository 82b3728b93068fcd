"""Every tower by name: ``TOWERS[name](config, tokenizer) -> Tower``, one signature for all.

Each entry names its tower class, whose ``reads`` class attribute (one of
:data:`mmssl.kinds.TOWER_INPUTS`) says what it takes: only towers that read ``code-tokens`` take
the code tokenizer (a ``tokenizers.Tokenizer``); the others bring their own input format and refuse
one. Every entry is enrolled in the contract test ``tests/encoders/test_tower_contract.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import Callable

from tokenizers import Tokenizer

from mmssl.encoders.code import (BiRNNTower, CNNTower, NBoWTower, SelfAttentionTower, build_birnn_tower, build_cnn_tower,
                                 build_nbow_tower, build_self_attention_tower, saved_code_tokenizer)
from mmssl.encoders.image import OpenClipImageTower, build_open_clip_image_tower
from mmssl.encoders.pretext_towers import (CausalSelfAttentionTower, PixelCNNTower, VQEncoderTower, WaveNetTower,
                                           build_gpt_tower, build_pixelcnn_tower, build_vq_encoder_tower,
                                           build_wavenet_tower)
from mmssl.encoders.text import (HFTextTower, MiniLMTower, OpenClipTextTower, build_hf_text_tower, build_minilm_tower,
                                 build_open_clip_text_tower)
from mmssl.encoders.tower import Tower, TowerConfig
from mmssl.kinds import CODE_TOKENS

TowerFactory = Callable[[TowerConfig, "Tokenizer | None"], Tower]


@dataclass(frozen=True)
class RegisteredTower:
    """One entry of :data:`TOWERS`: the class it builds (its ``reads`` says what it takes) and how."""

    tower_class: type[Tower]
    build: TowerFactory

    @property
    def reads(self) -> str:
        return self.tower_class.reads

    def __call__(self, config: TowerConfig, tokenizer: Tokenizer | None = None) -> Tower:
        return self.build(config, tokenizer)


TOWERS: dict[str, RegisteredTower] = {
    # images (open_clip visual towers; model name = JSON config name)
    "vit-tiny-64": RegisteredTower(OpenClipImageTower, partial(build_open_clip_image_tower, model_name="vit-tiny-64")),
    "resnet-tiny-64": RegisteredTower(OpenClipImageTower,
                                      partial(build_open_clip_image_tower, model_name="resnet-tiny-64")),
    "vit-b-32": RegisteredTower(OpenClipImageTower, partial(build_open_clip_image_tower, model_name="ViT-B-32")),
    # natural language (CLIP BPE text transformers, MiniLM)
    "clip-text-tiny": RegisteredTower(OpenClipTextTower, partial(build_open_clip_text_tower, model_name="clip-text-tiny")),
    "clip-text-b-32": RegisteredTower(OpenClipTextTower, partial(build_open_clip_text_tower, model_name="ViT-B-32")),
    "minilm": RegisteredTower(MiniLMTower, build_minilm_tower),
    "hf-text": RegisteredTower(HFTextTower, build_hf_text_tower),  # a local HF / sentence-transformers folder
    # code and code-search queries (CodeSearchNet family over the code tokenizer)
    "nbow": RegisteredTower(NBoWTower, build_nbow_tower),
    "cnn": RegisteredTower(CNNTower, build_cnn_tower),
    "bigru": RegisteredTower(BiRNNTower, partial(build_birnn_tower, cell="gru")),
    "bilstm": RegisteredTower(BiRNNTower, partial(build_birnn_tower, cell="lstm")),
    "self-attention": RegisteredTower(SelfAttentionTower, build_self_attention_tower),
    # built for the pretext tasks (mmssl.pretext): GPT over code tokens, WaveNet over bytes, image generators
    "gpt": RegisteredTower(CausalSelfAttentionTower, build_gpt_tower),
    "wavenet": RegisteredTower(WaveNetTower, build_wavenet_tower),
    "pixelcnn-32": RegisteredTower(PixelCNNTower, partial(build_pixelcnn_tower, image_size=32, levels=8)),
    "vq-encoder-32": RegisteredTower(VQEncoderTower, partial(build_vq_encoder_tower, image_size=32)),
}


def takes_code_tokenizer(name: str) -> bool:
    """Whether tower ``name`` reads the code tokenizer (False for names not in :data:`TOWERS`)."""
    return name in TOWERS and TOWERS[name].reads == CODE_TOKENS


def needs_code_tokenizer(config: TowerConfig) -> bool:
    """Whether a tower needs a newly trained code tokenizer: it reads one and comes with none (no
    ``tokenizer`` file, no ``tokenizer.json`` beside its pretrained checkpoint)."""
    return takes_code_tokenizer(config.name) and saved_code_tokenizer(config) is None


def build_tower(config: TowerConfig | str, tokenizer: Tokenizer | None = None, **overrides) -> Tower:
    """Build a tower from a config or a name, with field overrides.

    Examples::

        build_tower("vit-tiny-64")
        build_tower("minilm", pretrained="minilm", locked=True)
        build_tower("cnn", tokenizer=train_code_tokenizer(texts), max_length=256)
    """
    config = TowerConfig(name=config) if isinstance(config, str) else config
    config = dataclasses.replace(config, **overrides) if overrides else config
    if config.name not in TOWERS:
        raise KeyError(f"unknown tower {config.name!r}; known: {', '.join(TOWERS)}")
    return TOWERS[config.name](config, tokenizer)
