"""A stub RetrievalModel for the index tests: vectors are a hash of the content, calls are recorded."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import numpy as np

from mmssl.index import IndexItem


def hashed_vector(data: bytes, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha1(data).digest()[:4], "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)  # (D,)
    return vector / np.linalg.norm(vector)


def code_items(n: int, modules=("json", "json.decoder", "email.utils", "html")) -> list[IndexItem]:
    """``n`` tiny functions spread round-robin over ``modules`` (metadata: func_name, line, module)."""
    items = []
    for i in range(n):
        module = modules[i % len(modules)]
        path = module.replace(".", "/") + ".py"
        items.append(IndexItem(path=path, content=f"def f{i}(x):\n    return x + {i}\n",
                               metadata={"func_name": f"f{i}", "line": i + 1, "module": module}))
    return items


class StubModel:
    """``fail_after_batches``: raise KeyboardInterrupt on the next call (a Ctrl-C); ``kill_after_batches``:
    SIGKILL this process on the next call (a ``kill -9``, nothing gets to clean up)."""

    def __init__(self, kind: str = "image-text", dim: int = 16, fingerprint: str = "sha256:stub0000",
                 fail_after_batches: int | None = None, kill_after_batches: int | None = None):
        self.kind, self.embed_dim, self.fingerprint, self.path = kind, dim, fingerprint, Path("models/stub")
        self.encoded: list[str] = []
        self.fail_after_batches = fail_after_batches
        self.kill_after_batches = kill_after_batches
        self.batches = 0

    def _tick(self):
        self.batches += 1
        if self.fail_after_batches is not None and self.batches > self.fail_after_batches:
            raise KeyboardInterrupt("simulated crash mid-build")
        if self.kill_after_batches is not None and self.batches > self.kill_after_batches:
            os.kill(os.getpid(), signal.SIGKILL)

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
