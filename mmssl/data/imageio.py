"""Opening user images safely and normalising every corpus image to one square RGB format.

All image corpora are cached as ``IMAGE_SIZE``×``IMAGE_SIZE`` RGB PNGs, the artwork centred on a
white background with its aspect ratio kept, so the encoders see one format whatever the source
(RGBA emoji bitmaps, SVG renders, user photos).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_SIZE = 128
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
# Refuse decompression bombs early; 64 MP is plenty for any real photo.
Image.MAX_IMAGE_PIXELS = 64_000_000


class ImageDecodeError(ValueError):
    """A file that should be an image cannot be decoded; the message names the file and why.

    ``reason`` is the short, path-free cause ("empty file", "not an image", ...), for reports that
    count failures by kind.
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image file, raising :class:`ImageDecodeError` on any problem.

    Catches the cases a folder of user files really has: 0-byte files, text files named .jpg,
    truncated PNGs (Pillow only notices those on ``load()``), and decompression bombs.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageDecodeError(f"{path}: empty file (0 bytes)", "empty file")
        with Image.open(path) as img:
            img.load()  # force the decode now: truncation only shows up here
            return img.copy()
    except ImageDecodeError:
        raise
    except FileNotFoundError as e:
        raise ImageDecodeError(f"{path}: no such file", "no such file") from e
    except PermissionError as e:
        raise ImageDecodeError(f"{path}: permission denied", "permission denied") from e
    except UnidentifiedImageError as e:
        raise ImageDecodeError(f"{path}: not an image (unrecognised format)", "not an image") from e
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(f"{path}: image too large ({e})", "image too large") from e
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
