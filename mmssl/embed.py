"""Embed a JSONL file or a folder of images with a model and write the vectors to a ``.npy`` file.

What ``python -m mmssl embed`` does, callable from Python:

* JSONL input: one JSON object a line with a ``text`` (captions, queries), ``code`` or ``image``
  field, the one named by ``modality``; ``image`` is a file path, a relative one resolved against
  the JSONL's folder. Blank lines are ignored; anything else that is not such an object is an error
  naming the line.
* A folder: every image under it (png, jpg, jpeg, webp; recursively, hidden files and folders
  skipped), in sorted path order; only ``modality="image"`` applies.

The output is float32 (N, D), rows L2-normalised, row i for input i, written atomically (temp file
+ rename) so a reader never sees half a file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mmssl.io import atomic_open
from mmssl.kinds import MODEL_CODE, MODEL_ENCODES, MODEL_IMAGE_TEXT

MODALITIES = ("text", "code", "image")


class EmbedInputError(ValueError):
    """The input file cannot be embedded as asked; the message names the file, line and fix."""


def read_items(modality: str, input_path: str | Path) -> list:
    """The strings (text, code) or image paths to embed, in input order.

    Raises:
        FileNotFoundError: ``input_path`` does not exist.
        EmbedInputError: bad JSON, a missing or non-string field, no items, or a folder for a text modality.
    """
    if modality not in MODALITIES:
        raise EmbedInputError(f"unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}")
    path = Path(input_path)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    if path.is_dir():
        from mmssl.data.folder import image_files

        if modality != "image":
            raise EmbedInputError(f"{path} is a folder, which is read as images; use --modality image, or pass a "
                                  f"JSONL file with a {modality!r} field per line")
        images = [str(p) for p in image_files(path)]
        if not images:
            raise EmbedInputError(f"no images (png, jpg, jpeg, webp) under {path}")
        return images
    items = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise EmbedInputError(f"{path}:{number}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column "
                                      f"{e.start + 1}); save the file as UTF-8 JSONL") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise EmbedInputError(f"{path}:{number}: not valid JSON ({e.msg}); the input must be JSONL, one "
                                      "object a line") from None
            if not isinstance(record, dict):
                raise EmbedInputError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            if modality not in record:
                fields = ", ".join(sorted(record)) or "none"
                raise EmbedInputError(f"{path}:{number}: no {modality!r} field (fields: {fields}); each line needs "
                                      f"one, or pick the --modality that matches the file")
            value = record[modality]
            if not isinstance(value, str):
                raise EmbedInputError(f"{path}:{number}: {modality!r} must be a string, got "
                                      f"{type(value).__name__}")
            if modality == "image":
                value = str(path.parent / value) if not Path(value).is_absolute() else value
            items.append(value)
    if not items:
        raise EmbedInputError(f"{path} holds no records; write one JSON object with a {modality!r} field a line")
    return items


def check_modality(model, modality: str) -> None:
    """A clear error before any work when the model has no encoder for ``modality``."""
    supported = MODEL_ENCODES[model.kind]
    if modality not in supported:
        article = "an" if model.kind == MODEL_IMAGE_TEXT else "a"
        raise EmbedInputError(f"{model.path} is {article} {model.kind} model: it embeds --modality "
                              f"{' or '.join(supported)}, not {modality}; use a "
                              f"{MODEL_CODE if modality == 'code' else MODEL_IMAGE_TEXT} model for {modality}")


def encode_items(model, modality: str, items: list, batch_size: int | None = None) -> np.ndarray:
    """(N, D) float32 unit rows of ``items`` with the model's encoder for ``modality``."""
    encode = {"text": model.encode_text, "code": model.encode_code, "image": model.encode_image}[modality]
    return encode(items, batch_size)


def save_npy(array: np.ndarray, output: str | Path) -> Path:
    """Write ``array`` to ``output`` exactly (no ``.npy`` appended), atomically."""
    with atomic_open(output, "wb") as f:
        np.save(f, array)
    return Path(output)


def embed_file(model, modality: str, input_path: str | Path, output: str | Path,
               batch_size: int | None = None) -> tuple[Path, tuple[int, int]]:
    """Embed ``input_path`` (JSONL or image folder) and write the (N, D) array to ``output``.

    Returns:
        The output path and the array's shape.
    """
    check_modality(model, modality)
    items = read_items(modality, input_path)
    vectors = encode_items(model, modality, items, batch_size)  # (N, D)
    return save_npy(vectors.astype(np.float32, copy=False), output), vectors.shape
