"""A stub RetrievalModel for the index tests: vectors are a hash of the content, calls are recorded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def hashed_vector(data: bytes, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha1(data).digest()[:4], "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)  # (D,)
    return vector / np.linalg.norm(vector)


class StubModel:
    def __init__(self, kind: str = "image-text", dim: int = 16, fingerprint: str = "sha256:stub0000",
                 fail_after_batches: int | None = None):
        self.kind, self.embed_dim, self.fingerprint, self.path = kind, dim, fingerprint, Path("models/stub")
        self.encoded: list[str] = []
        self.fail_after_batches = fail_after_batches
        self.batches = 0

    def _tick(self):
        self.batches += 1
        if self.fail_after_batches is not None and self.batches > self.fail_after_batches:
            raise KeyboardInterrupt("simulated crash mid-build")

    def encode_image(self, paths):
        self._tick()
        self.encoded.extend(str(p) for p in paths)
        return np.stack([hashed_vector(Path(p).read_bytes(), self.embed_dim) for p in paths])  # (b, D)

    def encode_code(self, codes):
        self._tick()
        self.encoded.extend(codes)
        return np.stack([hashed_vector(c.encode(), self.embed_dim) for c in codes])

    def encode_text(self, texts):
        return np.stack([hashed_vector(t.encode(), self.embed_dim) for t in texts])
