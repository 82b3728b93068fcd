"""A disk cache of a locked tower's features, keyed by the tower and by each text's hash.

A locked tower (LiT) always maps the same text to the same features, so the features are computed
once and reused by every epoch, every training run and every evaluation: this is what makes the
default CPU models train in minutes with MiniLM as their text side. The cache is content
addressed: ``<root>/<tower fingerprint>/`` holds ``vectors.npy`` (N, D) float32 and
``hashes.txt`` (one sha1 per row); new texts are appended (atomic rewrite), known ones are read.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from mmssl.data.paths import data_root
from mmssl.encoders.tower import Tower


def default_cache_root() -> Path:
    return data_root() / "cache" / "features"


def tower_fingerprint(tower: Tower) -> str:
    """Name + config + a hash of every weight: two towers share a cache only if they compute the same thing."""
    digest = hashlib.sha1()
    digest.update(json.dumps({"name": tower.config.name, "max_length": tower.config.max_length}).encode())
    for name, tensor in sorted(tower.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"{tower.config.name}-{digest.hexdigest()[:16]}"


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", errors="surrogatepass")).hexdigest()


class FeatureCache:
    """Features of ``tower`` for lists of strings, computed once and kept under ``root``."""

    def __init__(self, tower: Tower, root: Path | None = None):
        if not tower.locked:
            raise ValueError(f"only a locked tower's features can be cached; {tower.config.name!r} is trainable "
                             "(set locked=True in its TowerConfig)")
        self.tower = tower
        self.folder = Path(root or default_cache_root()) / tower_fingerprint(tower)
        self._rows: dict[str, int] = {}
        self._vectors = np.zeros((0, tower.output_dim), dtype=np.float32)
        if (self.folder / "hashes.txt").exists() and (self.folder / "vectors.npy").exists():
            hashes = (self.folder / "hashes.txt").read_text().split()
            vectors = np.load(self.folder / "vectors.npy")
            if len(hashes) == len(vectors):  # a mismatch means an interrupted write: start over
                self._rows = {h: i for i, h in enumerate(hashes)}
                self._vectors = vectors

    def __len__(self) -> int:
        return len(self._rows)

    def features(self, texts: list[str], batch_size: int = 128) -> torch.Tensor:
        """(N, D) float32 features of ``texts`` in order; encodes (and stores) only unseen texts."""
        hashes = [text_hash(t) for t in texts]
        todo: dict[str, str] = {}
        for h, t in zip(hashes, texts):
            if h not in self._rows and h not in todo:
                todo[h] = t
        if todo:
            new = self.tower.encode(list(todo.values()), batch_size=batch_size).cpu().numpy()  # (M, D)
            start = len(self._vectors)
            self._vectors = np.concatenate([self._vectors, new.astype(np.float32)])
            for offset, h in enumerate(todo):
                self._rows[h] = start + offset
            self._save()
        return torch.from_numpy(self._vectors[[self._rows[h] for h in hashes]])

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        order = sorted(self._rows, key=self._rows.get)
        tmp_vectors, tmp_hashes = self.folder / ".vectors.tmp.npy", self.folder / ".hashes.tmp"
        np.save(tmp_vectors, self._vectors)
        tmp_hashes.write_text("\n".join(order) + "\n")
        os.replace(tmp_vectors, self.folder / "vectors.npy")
        os.replace(tmp_hashes, self.folder / "hashes.txt")
