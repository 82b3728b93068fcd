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
from mmssl.io import atomic_open, write_text


def default_cache_root() -> Path:
    return data_root() / "cache" / "features"


def tower_fingerprint(tower: Tower, keys: list[str] | None = None) -> str:
    """Name + config + a hash of every weight (or of the ``keys`` of its state dict only): two towers
    share a cache only if they compute the same thing."""
    digest = hashlib.sha1()
    digest.update(json.dumps({"name": tower.config.name, "max_length": tower.config.max_length}).encode())
    state = tower.state_dict()
    for name in sorted(state if keys is None else keys):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
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
        with atomic_open(self.folder / "vectors.npy", "wb") as handle:
            np.save(handle, self._vectors)
        write_text(self.folder / "hashes.txt", "\n".join(order) + "\n")


class StateCache:
    """Frozen-part token states of a partially frozen tower, per text, on disk; computed once.

    For a tower with ``frozen_layers`` (see :class:`mmssl.encoders.text.MiniLMTower`) the output of
    the frozen part never changes during training, so each text's (L, H) states are computed once
    and every step runs only the trainable top layers. Storage under
    ``<root>/states-<name>-<hash of the frozen weights>/``: ``states.f16`` (all texts' states
    back to back, float16, read through a memory map: the cache never sits in RAM) and
    ``index.tsv`` (sha1, row offset, length per text), rewritten atomically after each chunk, so a
    killed precompute resumes where it stopped.
    """

    def __init__(self, tower: Tower, root: Path | None = None):
        if not getattr(tower.config, "frozen_layers", 0) or not hasattr(tower, "frozen_states"):
            raise ValueError(f"StateCache needs a tower with frozen layers (frozen_layers > 0); "
                             f"{tower.config.name!r} has none")
        self.tower = tower
        # the frozen weights' names say how many layers are frozen; their values, what they compute
        fingerprint = tower_fingerprint(tower, keys=tower.frozen_parameter_names())
        self.folder = Path(root or default_cache_root()) / f"states-{fingerprint}"
        self.width = tower.output_dim
        self._rows: dict[str, tuple[int, int]] = {}
        self._end = 0  # rows (tokens) written
        self._memmap: np.memmap | None = None
        index = self.folder / "index.tsv"
        if index.exists():
            for line in index.read_text().splitlines():
                h, offset, length = line.split("\t")
                self._rows[h] = (int(offset), int(length))
                self._end = max(self._end, int(offset) + int(length))

    def __len__(self) -> int:
        return len(self._rows)

    def ensure(self, texts: list[str], batch_size: int = 32, chunk: int = 1024, progress: bool = True) -> None:
        """Compute and store the states of every text not cached yet (shortest first, in chunks)."""
        from tqdm.auto import tqdm

        todo: dict[str, str] = {}
        for t in texts:
            h = text_hash(t)
            if h not in self._rows and h not in todo:
                todo[h] = t
        if not todo:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        items = sorted(todo.items(), key=lambda kv: len(kv[1]))  # similar lengths share a batch: less padding
        device = next(self.tower.parameters()).device
        was_training = self.tower.training
        self.tower.eval()
        bar = tqdm(total=len(items), desc=f"{self.tower.config.name} frozen states", disable=not progress)
        with open(self.folder / "states.f16", "r+b" if (self.folder / "states.f16").exists() else "wb") as f:
            f.seek(self._end * self.width * 2)
            f.truncate()  # bytes past the index are from an interrupted chunk
            for start in range(0, len(items), chunk):
                for b in range(start, min(start + chunk, len(items)), batch_size):
                    part = items[b:min(b + batch_size, start + chunk, len(items))]
                    inputs = {k: v.to(device) for k, v in self.tower.prepare([t for _, t in part]).items()}
                    states, mask = self.tower.frozen_states(inputs)  # (b, L, H), (b, L)
                    lengths = mask.sum(1).tolist()
                    for (h, _), state, length in zip(part, states, lengths):
                        f.write(state[:length].to(torch.float16).cpu().numpy().tobytes())
                        self._rows[h] = (self._end, length)
                        self._end += length
                    bar.update(len(part))
                f.flush()
                os.fsync(f.fileno())
                self._write_index()
        bar.close()
        self.tower.train(was_training)
        self._memmap = None

    def _write_index(self) -> None:
        write_text(self.folder / "index.tsv", "".join(f"{h}\t{o}\t{n}\n" for h, (o, n) in self._rows.items()))

    def states(self, text: str) -> torch.Tensor:
        """(L, H) float16 states of one cached text (KeyError if :meth:`ensure` has not seen it)."""
        h = text_hash(text)
        if h not in self._rows:
            raise KeyError(f"text {text[:40]!r} is not in the state cache at {self.folder}; call ensure() first")
        if self._memmap is None:
            self._memmap = np.memmap(self.folder / "states.f16", dtype=np.float16, mode="r").reshape(-1, self.width)
        offset, length = self._rows[h]
        return torch.from_numpy(np.array(self._memmap[offset:offset + length]))
