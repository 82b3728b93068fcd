"""A trained dual encoder as users meet it: ``mmssl.load_model(path)`` and three ``encode_*`` methods.

    model = mmssl.load_model("models/clip-default")
    model.kind                                    # "image-text" or "code"
    model.encode_text(["a red fire truck"])       # (1, E) float32, unit rows: captions and queries
    model.encode_image(["cat.png", pil_image])    # (2, E): image models only
    model.encode_code(["def f(x): ..."])          # code models only

The *query* side of every model is natural language (:meth:`RetrievalModel.encode_text`); the
*item* side is an image tower (image-text models) or a code tower (code models). Lists go in,
float32 NumPy arrays (N, E) with L2-normalised rows come out, in input order. Encoding is batched,
in eval mode under ``torch.inference_mode``, on CUDA when present. Every ``encode_*`` goes through
one loop (:meth:`RetrievalModel.encode_items`): strings are batched by token length
(:func:`mmssl.encoders.tower.bucketed_batches`), each batch runs tower + projection, and the rows
are normalised once, in float32, at the end.

``encoding`` says how the MiniLM towers run on CPU:

* ``"fp32"``: as trained (float32, the tower's own ``max_length``);
* ``"fast"``: float32 with code and text truncated at :data:`FAST_MAX_LENGTH` tokens, in small
  token-length buckets. bench/encode.py measures it against fp32 and the other candidates (int8
  dynamic quantization, ONNX Runtime) and records why this one was kept (bench/results/encode.json).

Both are plain torch, so they run (and agree) on CPU and CUDA. An index records the encoding that
embedded it; a search runs its model the same way (:meth:`RetrievalModel.with_encoding`).

A model may also be a user's own pretrained model from local files, named by a *spec* wherever a
model folder goes: ``open_clip:ARCH:/path/weights.safetensors`` (image-text) or a local Hugging
Face / sentence-transformers folder (code); see :mod:`mmssl.encoders.external`. Its fingerprint
hashes those files, and its model card (:func:`read_model_card`) says where it came from.

Images are brought to the corpus format first (fit into a 128 px white square, alpha flattened;
:func:`mmssl.data.imageio.to_square_rgb`), so a user's photo is seen the way the training images
were; then the tower's eval transform resizes and normalises it.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmssl.encoders.dual import DualEncoder, load_dual_encoder
from mmssl.encoders.text import MINILM_PACKAGE, MiniLMTower
from mmssl.encoders.tower import Tower, _to_device, bucketed_batches
from mmssl.kinds import MODEL_CODE as CODE
from mmssl.kinds import MODEL_IMAGE_TEXT as IMAGE_TEXT

DEFAULT_BATCH_SIZE = 64
FINGERPRINT_CHUNK = 1 << 20
FP32, FAST = "fp32", "fast"
ENCODINGS = (FP32, FAST)
BUILD_ENCODING = FAST  # index builds (CLI, the app's default and folder indexes); the manifest records it
FAST_MAX_LENGTH = 128  # tokens; chosen by bench/encode_lengths.py (MRR vs length), speed in bench/encode.py
FAST_BATCH_SIZE = 16  # small buckets pad least; larger ones gain nothing on CPU
PROGRESS_MIN_BATCHES = 8  # a shorter encode shows no bar


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_encoding(encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")
    return encoding


def _check_strings(items, what: str, method: str) -> list[str]:
    """``items`` as a list of non-blank strings, or a ValueError/TypeError naming the bad one."""
    if isinstance(items, (str, bytes)):
        raise TypeError(f"{method} takes a list of strings, got a single {type(items).__name__}; "
                        f"wrap it: {method}([{items[:40]!r}])")
    items = list(items)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{method}: item {i} is a {type(item).__name__}, expected a string ({what})")
        if not item.strip():
            raise ValueError(f"{method}: item {i} is an empty or whitespace-only {what}; "
                             f"every {what} needs some text (drop or fill the empty ones)")
    return items


class RetrievalModel:
    """A saved :class:`~mmssl.encoders.DualEncoder` with list-in, array-out encoders.

    Attributes:
        kind: ``"image-text"`` (image item tower) or ``"code"`` (a sequence item tower over code).
        embed_dim: E, the width of every embedding.
        path: the model folder.
        device: where the towers run.
        encoding: ``"fp32"`` or ``"fast"`` (see the module docstring).
        dual_encoder: the underlying :class:`~mmssl.encoders.DualEncoder` (eval mode).
    """

    def __init__(self, dual_encoder: DualEncoder, path: str | Path, device: torch.device,
                 batch_size: int = DEFAULT_BATCH_SIZE, encoding: str = FP32):
        self.dual_encoder = dual_encoder.eval()
        self.path = Path(path)
        self.device = device
        self.batch_size = batch_size
        self.encoding = check_encoding(encoding)
        self.kind = IMAGE_TEXT if dual_encoder.item_tower.modality == "image" else CODE
        self.embed_dim = int(dual_encoder.embed_dim)

    def __repr__(self) -> str:
        config = self.dual_encoder.config
        towers = f"query={config.query.name}, item={config.item.name}" if config is not None else ""
        return (f"RetrievalModel({str(self.path)!r}, kind={self.kind!r}, embed_dim={self.embed_dim}, "
                f"encoding={self.encoding!r}, {towers})")

    # ------------------------------------------------------------------ public encoders

    def encode_text(self, texts: Sequence[str], batch_size: int | None = None,
                    on_batch=None) -> np.ndarray:
        """Natural language (captions, search queries) -> (N, E) float32 unit rows, in order.

        ``on_batch`` (every ``encode_*``): called with each batch's size, e.g. a progress bar's update.

        Raises:
            ValueError: a text is empty or whitespace only.
        """
        return self.encode_items("query", _check_strings(texts, "text", "encode_text"), batch_size, on_batch)

    def encode_code(self, codes: Sequence[str], batch_size: int | None = None,
                    on_batch=None) -> np.ndarray:
        """Source code (functions) -> (N, E) float32 unit rows, in order; code models only.

        Long code is truncated to the tower's ``max_length`` tokens (characters beyond
        ``32 * max_length`` are never even tokenised), so any length is fast.

        Raises:
            ValueError: this is an image-text model, or a code string is empty.
        """
        if self.kind != CODE:
            raise ValueError(f"{self.path} is an {self.kind} model: it has no code tower; use encode_image for "
                             "images and encode_text for captions, or load a code model (e.g. models/code-default)")
        return self.encode_items("item", _check_strings(codes, "code string", "encode_code"), batch_size, on_batch)

    def encode_image(self, images: Sequence[str | Path | Image.Image], batch_size: int | None = None,
                     on_batch=None) -> np.ndarray:
        """Images (file paths or PIL images) -> (N, E) float32 unit rows, in order; image models only.

        Files are decoded one batch at a time, so memory stays bounded on a large folder.

        Raises:
            ValueError: this is a code model.
            mmssl.data.imageio.ImageDecodeError: a file cannot be decoded (the message names it).
        """
        if self.kind != IMAGE_TEXT:
            raise ValueError(f"{self.path} is a {self.kind} model: it has no image tower; use encode_code for "
                             "functions and encode_text for queries, or load an image-text model "
                             "(e.g. models/clip-default)")
        if isinstance(images, (str, Path, Image.Image)):
            raise TypeError("encode_image takes a list of images (paths or PIL images); wrap a single one in a list")
        images = list(images)
        for i, image in enumerate(images):
            if not isinstance(image, (str, Path, Image.Image)):
                raise TypeError(f"encode_image: item {i} is a {type(image).__name__}; expected a file path or "
                                "a PIL image")
        return self.encode_items("item", images, batch_size, on_batch)

    def with_encoding(self, encoding: str) -> "RetrievalModel":
        """This model run with ``encoding``: ``self`` if it already is, else a view sharing the weights."""
        if check_encoding(encoding) == self.encoding:
            return self
        view = copy.copy(self)  # the fingerprint, once computed, is shared too
        view.encoding = encoding
        return view

    def encode_items(self, side: str, items: list, batch_size: int | None = None, on_batch=None) -> np.ndarray:
        """The one encode loop: ``items`` (checked strings, or images) through the ``side`` tower.

        Args:
            side: ``"query"`` (natural language) or ``"item"`` (images or code).
            items: what that tower's ``prepare`` takes (strings; images as paths or PIL images).
            batch_size: default :attr:`batch_size` (``"fast"``: at most :data:`FAST_BATCH_SIZE`).
            on_batch: called with each batch's size (a build's progress bar); without it a long
                encode shows its own bar.

        Returns:
            (N, E) float32 unit rows, row i for ``items[i]``.
        """
        tower: Tower = getattr(self.dual_encoder, f"{side}_tower")
        projection = getattr(self.dual_encoder, f"{side}_projection")
        batch_size = batch_size or self.batch_size
        max_length = self.fast_max_length(tower)
        if max_length is not None and self.device.type == "cpu":
            batch_size = min(batch_size, FAST_BATCH_SIZE)
        prepare = None
        if tower.modality == "image":  # decoded a batch at a time, in the corpus format
            prepare = lambda images: tower.prepare([_corpus_format(image) for image in images])  # noqa: E731
        out = np.zeros((len(items), self.embed_dim), dtype=np.float32)  # (N, E)
        bar = None
        if on_batch is None and len(items) > PROGRESS_MIN_BATCHES * batch_size:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(items), desc=f"encoding {side}s", unit=side, leave=False)
            on_batch = bar.update
        with torch.inference_mode():
            for rows, inputs in bucketed_batches(tower, items, batch_size, max_length, prepare):
                features = tower(_to_device(inputs, self.device))  # (b, D)
                out[rows] = projection(features).float().cpu().numpy()  # (b, E)
                if on_batch is not None:
                    on_batch(len(rows))
        if bar is not None:
            bar.close()
        return unit_rows(out)

    # ------------------------------------------------------------------ identity

    @cached_property
    def fingerprint(self) -> str:
        """A stable hash of the weights and config (``sha256:`` + 16 hex digits), for index manifests.

        Covers ``config.json``'s model config, ``model.safetensors`` and the code tokenizers, and
        the MiniLM package version when a locked MiniLM tower is read from that package. Two
        folders with the same files have the same fingerprint wherever they live.
        """
        digest = hashlib.sha256()
        meta = json.loads((self.path / "config.json").read_text())
        digest.update(json.dumps(meta.get("model"), sort_keys=True).encode())
        files = ["model.safetensors"] + sorted(p.name for p in self.path.glob("*_tokenizer.json"))
        for name in files:
            digest.update(name.encode())
            with open(self.path / name, "rb") as f:
                for chunk in iter(lambda: f.read(FINGERPRINT_CHUNK), b""):
                    digest.update(chunk)
        if meta.get("weights_from_package"):
            digest.update(f"{MINILM_PACKAGE}=={_package_version(MINILM_PACKAGE)}".encode())
        return f"sha256:{digest.hexdigest()[:16]}"

    def fast_max_length(self, tower: Tower) -> int | None:
        """The fast path's token cap for a MiniLM tower; ``None``: the tower's own ``max_length``."""
        if self.encoding == FAST and isinstance(tower, MiniLMTower):
            return min(FAST_MAX_LENGTH, tower.config.max_length)
        return None


class ExternalModel(RetrievalModel):
    """A user's own pretrained model (an open_clip spec or an HF folder); ``path`` is the spec."""

    @cached_property
    def fingerprint(self) -> str:
        from mmssl.encoders.external import external_fingerprint

        return external_fingerprint(self.path)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """(N, E) float32 rows scaled to unit length in place (all-zero rows stay zero): the one normalisation."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (N, 1)
    vectors /= np.maximum(norms, np.finfo(np.float32).tiny)
    return vectors


def _corpus_format(image: str | Path | Image.Image) -> Image.Image:
    """A path or PIL image in the corpus format: 128 px RGB square on white (decoding errors name the file)."""
    from mmssl.data.imageio import IMAGE_SIZE, open_square_rgb, to_square_rgb

    if not isinstance(image, Image.Image):
        return open_square_rgb(image, IMAGE_SIZE)  # within the pixel budget, the full-size decode freed
    if image.size == (IMAGE_SIZE, IMAGE_SIZE) and image.mode == "RGB":
        return image
    return to_square_rgb(image, IMAGE_SIZE)


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def load_model(path: str | Path, device: str | torch.device | None = None,
               batch_size: int = DEFAULT_BATCH_SIZE, encoding: str = FP32) -> RetrievalModel:
    """Load a dual encoder saved by :func:`mmssl.encoders.save_dual_encoder` for encoding.

    Args:
        path: the model folder (``config.json`` + ``model.safetensors``), e.g. ``models/clip-default``;
            or a user's own model: ``open_clip:ARCH:FILE`` or a local HF / sentence-transformers folder.
        device: ``"cpu"``, ``"cuda"``, ...; default CUDA when present, else CPU.
        batch_size: default batch size of the ``encode_*`` methods.
        encoding: ``"fp32"`` (as trained) or ``"fast"`` (the CPU fast path; see the module docstring).

    Raises:
        ValueError: an unknown ``encoding``.
        FileNotFoundError: ``path`` does not exist.
        mmssl.checkpoint.CheckpointError: ``path`` holds no dual encoder or a corrupt one.
        mmssl.encoders.image.WeightsFileError: an open_clip spec with an unknown architecture, a
            missing file or weights that do not fit it.
    """
    from mmssl.encoders.external import external_dual_encoder, is_external_spec

    device = torch.device(device) if device is not None else default_device()
    check_encoding(encoding)  # a typo fails before the weights load
    if is_external_spec(path):
        spec = _absolute_spec(path)
        return ExternalModel(external_dual_encoder(spec).to(device), spec, device, batch_size, encoding)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}: pass a folder written by save_dual_encoder or a training "
                                "recipe (e.g. models/clip-default, models/code-default), a local Hugging Face / "
                                "sentence-transformers folder, or open_clip:ARCH:/path/to/weights.safetensors")
    return RetrievalModel(load_dual_encoder(path, device=device), path, device, batch_size, encoding)


def model_exists(path: str | Path) -> bool:
    """Whether ``path`` names something on disk to load: a model folder, an HF folder, or an open_clip
    spec whose weights file exists (what the app checks before it offers a model)."""
    from mmssl.encoders.image import is_open_clip_spec

    if is_open_clip_spec(str(path)):
        return Path(str(path).split(":", 2)[-1]).expanduser().is_file()
    return Path(path).expanduser().exists()


def _absolute_spec(spec: str | Path) -> str:
    """The spec with an absolute path, so an index manifest that records it works from any folder."""
    from mmssl.encoders.image import is_open_clip_spec, parse_open_clip_spec

    if is_open_clip_spec(str(spec)):
        arch, file = parse_open_clip_spec(str(spec))
        return f"open_clip:{arch}:{file}"
    return str(Path(spec).expanduser().absolute())


MODEL_CARD_FILE = "manifest.json"  # written beside the weights by mmssl.recipes.dual_encoder
MODEL_CARD_FACTS = ("corpora", "train_pairs", "steps", "train_minutes", "device")


@dataclass(frozen=True)
class ModelCard:
    """What a model folder's training manifest says: how it was trained and how it scored."""

    facts: dict  # those of MODEL_CARD_FACTS the manifest records, in that order
    metrics: dict | None  # held-out evaluation (mmssl.eval.evaluate results; format_table prints it)
    manifest: dict  # the whole manifest (command, seed, data hash, run config, ...)


def read_model_card(path: str | Path) -> ModelCard | None:
    """The training manifest of the model folder ``path``; None when it has none (e.g. an exported model).

    A user's own model (open_clip spec, HF folder) gets a card of its provenance: source,
    architecture, files and size (no metrics).

    Raises:
        ValueError: the manifest exists but is not a JSON object (the message names the file).
    """
    from mmssl.encoders.external import external_provenance, is_external_spec

    if is_external_spec(path):
        return ModelCard(facts=external_provenance(path), metrics=None, manifest={"model": str(path)})
    manifest_file = Path(path) / MODEL_CARD_FILE
    if not manifest_file.is_file():
        return None
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{manifest_file} cannot be read ({e}); retrain the model or delete the file") from e
    if not isinstance(manifest, dict):
        raise ValueError(f"{manifest_file} holds a {type(manifest).__name__}, not a JSON object; retrain the model "
                         "or delete the file")
    metrics = manifest.get("metrics")
    return ModelCard(facts={k: manifest[k] for k in MODEL_CARD_FACTS if k in manifest},
                     metrics=metrics if isinstance(metrics, dict) and metrics else None, manifest=manifest)
