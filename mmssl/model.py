"""A trained dual encoder as users meet it: ``mmssl.load_model(path)`` and three ``encode_*`` methods.

    model = mmssl.load_model("models/clip-default")
    model.kind                                    # "image-text" or "code"
    model.encode_text(["a red fire truck"])       # (1, E) float32, unit rows: captions and queries
    model.encode_image(["cat.png", pil_image])    # (2, E): image models only
    model.encode_code(["def f(x): ..."])          # code models only

The *query* side of every model is natural language (:meth:`RetrievalModel.encode_text`); the
*item* side is an image tower (image-text models) or a code tower (code models). Lists go in,
float32 NumPy arrays (N, E) with L2-normalised rows come out, in input order. Encoding is batched,
in eval mode under ``torch.inference_mode``, on CUDA when present.

Images are brought to the corpus format first (fit into a 128 px white square, alpha flattened;
:func:`mmssl.data.imageio.to_square_rgb`), so a user's photo is seen the way the training images
were; then the tower's eval transform resizes and normalises it.
"""

from __future__ import annotations

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
from mmssl.encoders.text import MINILM_PACKAGE
from mmssl.encoders.tower import Tower
from mmssl.kinds import MODEL_CODE as CODE
from mmssl.kinds import MODEL_IMAGE_TEXT as IMAGE_TEXT

DEFAULT_BATCH_SIZE = 64
FINGERPRINT_CHUNK = 1 << 20


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
        dual_encoder: the underlying :class:`~mmssl.encoders.DualEncoder` (eval mode).
    """

    def __init__(self, dual_encoder: DualEncoder, path: str | Path, device: torch.device,
                 batch_size: int = DEFAULT_BATCH_SIZE):
        self.dual_encoder = dual_encoder.eval()
        self.path = Path(path)
        self.device = device
        self.batch_size = batch_size
        self.kind = IMAGE_TEXT if dual_encoder.item_tower.modality == "image" else CODE
        self.embed_dim = int(dual_encoder.embed_dim)

    def __repr__(self) -> str:
        config = self.dual_encoder.config
        towers = f"query={config.query.name}, item={config.item.name}" if config is not None else ""
        return f"RetrievalModel({str(self.path)!r}, kind={self.kind!r}, embed_dim={self.embed_dim}, {towers})"

    # ------------------------------------------------------------------ public encoders

    def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Natural language (captions, search queries) -> (N, E) float32 unit rows, in order.

        Raises:
            ValueError: a text is empty or whitespace only.
        """
        texts = _check_strings(texts, "text", "encode_text")
        return self._encode_strings(self.dual_encoder.query_tower, self.dual_encoder.project_query, texts,
                                    batch_size)

    def encode_code(self, codes: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Source code (functions) -> (N, E) float32 unit rows, in order; code models only.

        Long code is truncated to the tower's ``max_length`` tokens (characters beyond
        ``32 * max_length`` are never even tokenised), so any length is fast.

        Raises:
            ValueError: this is an image-text model, or a code string is empty.
        """
        if self.kind != CODE:
            raise ValueError(f"{self.path} is an {self.kind} model: it has no code tower; use encode_image for "
                             "images and encode_text for captions, or load a code model (e.g. models/code-default)")
        codes = _check_strings(codes, "code string", "encode_code")
        return self._encode_strings(self.dual_encoder.item_tower, self.dual_encoder.project_item, codes, batch_size)

    def encode_image(self, images: Sequence[str | Path | Image.Image], batch_size: int | None = None) -> np.ndarray:
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
        batch_size = batch_size or self.batch_size
        tower = self.dual_encoder.item_tower
        out = np.zeros((len(images), self.embed_dim), dtype=np.float32)  # (N, E)
        with torch.inference_mode():
            for start in self._batches(len(images), batch_size, "images"):
                batch = [_corpus_format(image) for image in images[start:start + batch_size]]
                pixels = tower.prepare(batch).to(self.device)  # (b, 3, S, S)
                out[start:start + len(batch)] = self._finish(self.dual_encoder.project_item(tower(pixels)))
        return out

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

    # ------------------------------------------------------------------ internals

    def _encode_strings(self, tower: Tower, project, texts: list[str], batch_size: int | None) -> np.ndarray:
        # shortest first, as sentence-transformers does: a batch pads to similar lengths, not to one outlier
        batch_size = batch_size or self.batch_size
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.embed_dim), dtype=np.float32)  # (N, E)
        with torch.inference_mode():
            for start in self._batches(len(texts), batch_size, "texts"):
                rows = order[start:start + batch_size]
                inputs = {k: v.to(self.device) for k, v in tower.prepare([texts[i] for i in rows]).items()}
                out[rows] = self._finish(project(tower(inputs)))
        return out

    @staticmethod
    def _finish(embeddings: torch.Tensor) -> np.ndarray:
        # the projections already normalise; renormalise in float32 so rows are unit to ~1e-7 on any device
        embeddings = torch.nn.functional.normalize(embeddings.float(), dim=-1)  # (b, E)
        return embeddings.cpu().numpy()

    @staticmethod
    def _batches(total: int, batch_size: int, unit: str):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        starts = range(0, total, batch_size)
        if total <= 8 * batch_size:
            return starts
        from tqdm.auto import tqdm

        return tqdm(starts, desc=f"encoding {unit}", unit="batch", leave=False)


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
               batch_size: int = DEFAULT_BATCH_SIZE) -> RetrievalModel:
    """Load a dual encoder saved by :func:`mmssl.encoders.save_dual_encoder` for encoding.

    Args:
        path: the model folder (``config.json`` + ``model.safetensors``), e.g. ``models/clip-default``.
        device: ``"cpu"``, ``"cuda"``, ...; default CUDA when present, else CPU.
        batch_size: default batch size of the ``encode_*`` methods.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        mmssl.checkpoint.CheckpointError: ``path`` holds no dual encoder or a corrupt one.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}: pass a folder written by save_dual_encoder or a training "
                                "recipe (e.g. models/clip-default, models/code-default)")
    device = torch.device(device) if device is not None else default_device()
    return RetrievalModel(load_dual_encoder(path, device=device), path, device, batch_size)


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

    Raises:
        ValueError: the manifest exists but is not a JSON object (the message names the file).
    """
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
