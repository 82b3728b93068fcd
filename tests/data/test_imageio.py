"""The decode budget: an image above the pixel limit is refused from its header, before any pixel is decoded."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from mmssl.data import imageio
from mmssl.data.imageio import ImageDecodeError, open_image, open_square_rgb


def write_blank_png(path: Path, width: int, height: int) -> Path:
    """A white RGB PNG of any size written row by row (the pixels never exist in memory): a few
    hundred KB on disk for 11000×11000, ~1.4 GB once decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff" * (3 * width)  # filter byte + RGB
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> Path:
    return write_blank_png(tmp_path_factory.mktemp("bomb") / "huge.png", 11000, 11000)


def test_huge_png_is_refused_from_its_header_without_decoding(huge_png, monkeypatch):
    assert huge_png.stat().st_size < 2_000_000  # small on disk
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self) or None)
    with pytest.raises(ImageDecodeError) as caught:
        open_image(huge_png)
    assert str(huge_png) in str(caught.value) and "11000×11000 = 121 Mpx" in str(caught.value)
    assert "limit is 40 Mpx" in str(caught.value) and imageio.MAX_PIXELS_ENV in str(caught.value)
    assert caught.value.reason == "image too large" and decoded == []


def _peak_rss_mb(code: str, env_extra: dict | None = None) -> dict:
    import os

    env = {**os.environ, **(env_extra or {})}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


PROBE = """
import json, sys
from mmssl.data.imageio import ImageDecodeError, open_square_rgb

def peak_mb():  # VmHWM: this process's peak RSS (ru_maxrss would carry the forking parent's over exec)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

before = peak_mb()
try:
    open_square_rgb({path!r})
    outcome = "decoded"
except ImageDecodeError as e:
    outcome = e.reason
print(json.dumps({{"outcome": outcome, "grew_mb": peak_mb() - before}}))
"""


def test_refusing_a_huge_png_costs_no_memory_and_the_limit_is_configurable(huge_png, tmp_path):
    refused = _peak_rss_mb(PROBE.format(path=str(huge_png)))
    assert refused["outcome"] == "image too large" and refused["grew_mb"] < 20
    # the same file under a raised limit really is decoded: the measurement can see a decode
    medium = write_blank_png(tmp_path / "medium.png", 4000, 4000)  # 16 Mpx: ~64 MB decoded
    assert _peak_rss_mb(PROBE.format(path=str(medium)), {imageio.MAX_PIXELS_ENV: "10000000"})["outcome"] == \
        "image too large"
    allowed = _peak_rss_mb(PROBE.format(path=str(medium)))
    assert allowed["outcome"] == "decoded" and allowed["grew_mb"] > 40


def test_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (4000, 3000), (200, 30, 30)).save(path, quality=90)
    assert open_image(path).size == (4000, 3000)
    assert open_image(path, draft_size=128).size == (500, 375)  # 1/8 scale, still >= 128 a side
    small = open_square_rgb(path)
    assert small.size == (128, 128) and small.getpixel((64, 64))[0] > 180


def test_bad_limit_setting_is_named(monkeypatch):
    monkeypatch.setenv(imageio.MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=imageio.MAX_PIXELS_ENV):
        imageio.max_pixels()
    monkeypatch.setenv(imageio.MAX_PIXELS_ENV, "2e6")
    assert imageio.max_pixels() == 2_000_000


def test_concurrent_decodes_are_bounded(tmp_path, monkeypatch):
    import threading
    import time

    paths = []
    for i in range(6):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (64, 64), (i, 0, 0)).save(paths[-1])
    running, peak, lock = [0], [0], threading.Lock()
    original = Image.Image.load

    def slow_load(self):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return original(self)

    monkeypatch.setattr(Image.Image, "load", slow_load)
    threads = [threading.Thread(target=open_image, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == imageio.DECODE_SLOTS
