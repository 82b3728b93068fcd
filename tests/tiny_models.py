"""Tiny saved dual encoders for the model, embed and eval tests (random weights, real towers).

* image-text: locked MiniLM (from its package, left out of the saved weights) over captions,
  ``vit-tiny-64`` over images;
* code: NBoW on both sides over a code tokenizer trained on ~200 stdlib functions and docstrings.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import torch

from mmssl.encoders import DualEncoderConfig, TowerConfig, build_dual_encoder, save_dual_encoder, train_code_tokenizer

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


def save_tiny_image_model(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    config = DualEncoderConfig(query=TowerConfig(name="minilm", pretrained="minilm", locked=True),
                               item=TowerConfig(name="vit-tiny-64"), embed_dim=32)
    return save_dual_encoder(build_dual_encoder(config), folder)


def save_tiny_code_model(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    tokenizer = train_code_tokenizer([text for pair in stdlib_pairs() for text in pair], vocab_size=2000)
    config = DualEncoderConfig(query=TowerConfig(name="nbow", width=48, max_length=64),
                               item=TowerConfig(name="nbow", width=48, max_length=256, pooling="attention"),
                               embed_dim=32)
    return save_dual_encoder(build_dual_encoder(config, tokenizer, tokenizer), folder)
