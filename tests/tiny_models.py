"""Tiny saved dual encoders for the model, embed and eval tests (random weights, real towers).

* image-text: locked MiniLM (from its package, left out of the saved weights) over captions,
  ``vit-tiny-64`` over images;
* code: NBoW on both sides over a code tokenizer built from ~200 stdlib functions and docstrings.

Every build is the same in every process (the tests compare rankings of these random-weight models):
torch is seeded, and the code vocabulary is chosen here by counting, because the library's trained
WordPiece vocabulary differs from one process to the next (HF tokenizers #1794: ties broken in
hash-map order).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections import Counter
from pathlib import Path

import torch
from tokenizers import Tokenizer, models

from mmssl.encoders import DualEncoderConfig, TowerConfig, build_dual_encoder, save_dual_encoder
from mmssl.encoders.tokenizer import SPECIAL_TOKENS, UNK, new_code_tokenizer

STDLIB_MODULES = ("textwrap", "shlex", "fnmatch", "posixpath", "string", "urllib.parse", "base64", "calendar",
                  "difflib", "json.decoder", "email.utils", "html", "ipaddress", "statistics")


def stdlib_pairs(limit: int = 200) -> list[tuple[str, str]]:
    """(first docstring paragraph, function source) of real standard-library functions."""
    pairs = []
    for name in STDLIB_MODULES:
        tree = ast.parse(inspect.getsource(importlib.import_module(name)))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("__"):
                docstring = ast.get_docstring(node)
                if docstring and len(docstring.split()) >= 3:
                    node.body = node.body[1:] or [ast.Pass()]
                    pairs.append((" ".join(docstring.split("\n\n")[0].split()), ast.unparse(node)))
    return pairs[:limit]


def tiny_code_tokenizer(texts: list[str], vocab_size: int = 2000) -> Tokenizer:
    """The code pipeline (normaliser, pre-tokeniser) with a WordPiece vocabulary chosen by counting:
    the special tokens, every character as a word start and as a ``##`` continuation, then the most
    frequent words (ties in alphabetical order) up to ``vocab_size``."""
    tokenizer = new_code_tokenizer()
    counts = Counter(word for text in texts for word, _ in
                     tokenizer.pre_tokenizer.pre_tokenize_str(tokenizer.normalizer.normalize_str(text)))
    chars = sorted({c for word in counts for c in word})
    vocab = list(SPECIAL_TOKENS) + chars + [f"##{c}" for c in chars]
    words = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
    vocab += words[: max(0, vocab_size - len(vocab))]
    tokenizer.model = models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token=UNK,
                                       max_input_chars_per_word=64)
    return tokenizer


def save_tiny_image_model(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    config = DualEncoderConfig(query=TowerConfig(name="minilm", pretrained="minilm", locked=True),
                               item=TowerConfig(name="vit-tiny-64"), embed_dim=32)
    return save_dual_encoder(build_dual_encoder(config), folder)


def save_tiny_code_model(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    tokenizer = tiny_code_tokenizer([text for pair in stdlib_pairs() for text in pair], vocab_size=2000)
    config = DualEncoderConfig(query=TowerConfig(name="nbow", width=48, max_length=64),
                               item=TowerConfig(name="nbow", width=48, max_length=256, pooling="attention"),
                               embed_dim=32)
    return save_dual_encoder(build_dual_encoder(config, tokenizer, tokenizer), folder)
