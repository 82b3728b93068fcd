"""Opening user images safely and normalising every corpus image to one square RGB format.

All image corpora are cached as ``IMAGE_SIZE``×``IMAGE_SIZE`` RGB PNGs, the artwork centred on a
white background with its aspect ratio kept, so the encoders see one format whatever the source
(RGBA emoji bitmaps, SVG renders, user photos).

Decoding has a budget, because a few hundred KB of PNG can declare 11000×11000 pixels (1.4 GB once
decoded): :func:`open_image` reads the size from the header and refuses an image above
``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`, ``$MMSSL_MAX_IMAGE_PIXELS`` overrides) before
decoding anything; JPEGs are decoded at a reduced scale when the caller needs a small image
(``draft_size``); at most :data:`DECODE_SLOTS` decodes run at once in a process; and
:func:`open_square_rgb` hands the memory of a large decode back to the operating system once the
small image is made.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_SIZE = 128
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
MAX_PIXELS_ENV = "MMSSL_MAX_IMAGE_PIXELS"
DECODE_SLOTS_ENV = "MMSSL_DECODE_SLOTS"
DEFAULT_MAX_PIXELS = 40_000_000  # a 40 Mpx photo is ~160 MB decoded (RGBA); any real photo fits
LARGE_DECODE_PIXELS = 4_000_000  # after decoding more than this, give the freed memory back
DECODE_SLOTS = max(1, int(os.environ.get(DECODE_SLOTS_ENV, "2")))
# Pillow's own bomb check (it warns above this value and raises above twice it, at open) is the
# backstop for decodes that do not come through open_image, which refuses above max_pixels itself.
Image.MAX_IMAGE_PIXELS = 4 * DEFAULT_MAX_PIXELS
_decode_slots = threading.BoundedSemaphore(DECODE_SLOTS)


class ImageDecodeError(ValueError):
    """A file that should be an image cannot be decoded; the message names the file and why.

    ``reason`` is the short, path-free cause ("empty file", "not an image", ...), for reports that
    count failures by kind.
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


def max_pixels() -> int:
    """The pixel budget of one decode: ``$MMSSL_MAX_IMAGE_PIXELS`` if set, else :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        raise ValueError(f"${MAX_PIXELS_ENV}={text!r} is not a number of pixels; set it like 40000000") from None
    if value < 1:
        raise ValueError(f"${MAX_PIXELS_ENV} must be at least 1, got {value}")
    return value


def check_pixel_budget(img: Image.Image, path, limit: int | None = None) -> None:
    """Raise :class:`ImageDecodeError` when ``img`` (opened, not yet decoded) declares more than ``limit`` pixels."""
    limit = max_pixels() if limit is None else limit
    width, height = img.size
    if width * height > limit:
        raise ImageDecodeError(
            f"{path}: image too large ({width}×{height} = {width * height / 1e6:.0f} Mpx; the limit is "
            f"{limit / 1e6:g} Mpx). Scale it down, or raise the limit with ${MAX_PIXELS_ENV}.", "image too large")


def release_memory() -> None:
    """Hand freed heap memory back to the OS (glibc keeps large freed blocks otherwise); a no-op elsewhere."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def _libc():
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            _LIBC = False
    return _LIBC or None


_LIBC = None


def open_image(path: str | Path, *, draft_size: int | None = None, limit: int | None = None) -> Image.Image:
    """Open and fully decode an image file, raising :class:`ImageDecodeError` on any problem.

    Catches the cases a folder of user files really has: 0-byte files, text files named .jpg,
    truncated PNGs (Pillow only notices those on ``load()``), and images above the pixel budget
    (refused from the header, before any pixel is decoded).

    Args:
        draft_size: the caller needs at most this many pixels a side: a JPEG is decoded at the
            smallest scale (1/2, 1/4, 1/8) still at least this large.
        limit: the pixel budget (default :func:`max_pixels`).
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageDecodeError(f"{path}: empty file (0 bytes)", "empty file")
        with open(path, "rb") as f:  # our file object: after load() the image needs it no more (no copy)
            img = Image.open(f)
            check_pixel_budget(img, path, limit)
            if draft_size is not None and img.format == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            with _decode_slots:
                img.load()  # force the decode now: truncation only shows up here
        return img
    except ImageDecodeError:
        raise
    except FileNotFoundError as e:
        raise ImageDecodeError(f"{path}: no such file", "no such file") from e
    except PermissionError as e:
        raise ImageDecodeError(f"{path}: permission denied", "permission denied") from e
    except UnidentifiedImageError as e:
        raise ImageDecodeError(f"{path}: not an image (unrecognised format)", "not an image") from e
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(f"{path}: image too large ({e}; the limit is {max_pixels() / 1e6:g} Mpx)",
                               "image too large") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(f"{path}: corrupt or truncated image ({e})", "corrupt or truncated image") from e


def to_square_rgb(img: Image.Image, size: int = IMAGE_SIZE, background=(255, 255, 255)) -> Image.Image:
    """Fit ``img`` inside a ``size``×``size`` square (aspect kept, centred), flatten alpha onto ``background``."""
    img = img.convert("RGBA")
    w, h = img.size
    if w == 0 or h == 0:
        raise ImageDecodeError("image has zero width or height", "empty image")
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = img.resize(new, Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (size, size), background + (255,))
    canvas.alpha_composite(img, ((size - new[0]) // 2, (size - new[1]) // 2))
    return canvas.convert("RGB")


def open_square_rgb(path: str | Path, size: int = IMAGE_SIZE) -> Image.Image:
    """A file in the corpus format (:func:`to_square_rgb`), decoded within the budget; the full-size
    decode is dropped, and its memory returned to the OS, before this returns."""
    image = open_image(path, draft_size=size)
    large = image.size[0] * image.size[1] > LARGE_DECODE_PIXELS
    small = to_square_rgb(image, size)
    image.close()
    del image
    if large:
        release_memory()
    return small
