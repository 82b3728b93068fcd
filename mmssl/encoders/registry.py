"""Every tower by name: ``TOWERS[name](config, tokenizer) -> Tower``, one signature for all.

``tokenizer`` is the code tokenizer (a ``tokenizers.Tokenizer``) for the code towers; the other
towers bring their own and refuse one. Every entry is enrolled in the contract test
``tests/encoders/test_tower_contract.py``.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Callable

from tokenizers import Tokenizer

from mmssl.encoders.code import build_birnn_tower, build_cnn_tower, build_nbow_tower, build_self_attention_tower
from mmssl.encoders.image import build_open_clip_image_tower
from mmssl.encoders.text import build_minilm_tower, build_open_clip_text_tower
from mmssl.encoders.tower import Tower, TowerConfig

TowerFactory = Callable[[TowerConfig, "Tokenizer | None"], Tower]

TOWERS: dict[str, TowerFactory] = {
    # images (open_clip visual towers; model name = JSON config name)
    "vit-tiny-64": partial(build_open_clip_image_tower, model_name="vit-tiny-64"),
    "resnet-tiny-64": partial(build_open_clip_image_tower, model_name="resnet-tiny-64"),
    "vit-b-32": partial(build_open_clip_image_tower, model_name="ViT-B-32"),
    # natural language (CLIP BPE text transformers, MiniLM)
    "clip-text-tiny": partial(build_open_clip_text_tower, model_name="clip-text-tiny"),
    "clip-text-b-32": partial(build_open_clip_text_tower, model_name="ViT-B-32"),
    "minilm": build_minilm_tower,
    # code and code-search queries (CodeSearchNet family over the code tokenizer)
    "nbow": build_nbow_tower,
    "cnn": build_cnn_tower,
    "bigru": partial(build_birnn_tower, cell="gru"),
    "bilstm": partial(build_birnn_tower, cell="lstm"),
    "self-attention": build_self_attention_tower,
}

_BUILT_IN = frozenset(TOWERS)  # before the pretext package adds its own

# towers that take a code tokenizer (trained with train_code_tokenizer); see also takes_code_tokenizer
CODE_TOKENIZER_TOWERS = frozenset({"nbow", "cnn", "bigru", "bilstm", "self-attention"})


def _register_extra_towers() -> None:
    """Towers defined by the pretraining packages (``gpt``, ``wavenet``, ``pixelcnn-32``, …)."""
    from mmssl.pretext.towers import register_pretext_towers

    register_pretext_towers()


def takes_code_tokenizer(name: str) -> bool:
    """Whether tower ``name`` reads the code tokenizer (this package's towers and the pretext ones)."""
    if name in CODE_TOKENIZER_TOWERS or name in _BUILT_IN:
        return name in CODE_TOKENIZER_TOWERS  # known here: no need to import the pretext package
    from mmssl.pretext.towers import PRETEXT_CODE_TOKENIZER_TOWERS

    return name in PRETEXT_CODE_TOKENIZER_TOWERS


def needs_code_tokenizer(config: TowerConfig) -> bool:
    """Whether a tower needs a newly trained code tokenizer: it reads one and comes with none (no
    ``tokenizer`` file, no ``tokenizer.json`` beside its pretrained checkpoint)."""
    from mmssl.encoders.code import saved_code_tokenizer

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
        _register_extra_towers()
    if config.name not in TOWERS:
        raise KeyError(f"unknown tower {config.name!r}; known: {', '.join(TOWERS)}")
    return TOWERS[config.name](config, tokenizer)
