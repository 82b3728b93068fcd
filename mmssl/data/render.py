"""Rendering SVG drawings (and raster stamps) to the corpora's 128×128 RGB PNGs, in parallel.

Shared by the clipart, stamps and game-icons corpora. A drawing is cropped to what is drawn (maps
on an A4 page would otherwise be specks), re-rendered larger when the crop is small, and a
white-on-white drawing becomes a black silhouette. Each job has a time limit and a size cap, so one
pathological SVG cannot hang a build; a failure is counted in the report by reason.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mmssl.data.imageio import IMAGE_SIZE, ImageDecodeError, open_image, to_square_rgb
from mmssl.data.report import CorpusReport
from mmssl.io import atomic_path


RENDER_TIMEOUT_S = 30.0  # per image; well above the slowest real drawing, so only runaway SVGs hit it
MAX_SVG_BYTES = 8_000_000  # the largest real drawing is 1.7 MB
_SUPERSAMPLE = 2  # render at 2x and downsample: smoother thin lines than cairo's own antialiasing
_MARGIN = 0.04  # white border kept around a cropped drawing, as a share of its longer side
_POOL_MIN_JOBS = 64  # below this a worker pool costs more than it saves


@dataclass(frozen=True)
class RenderJob:
    """One image to produce: ``out`` (a PNG path) from an SVG/raster file ``src`` or SVG markup ``svg``."""

    out: str
    where: str  # what to name in the report if it fails
    src: str | None = None
    svg: str | None = None


class _RenderTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _RenderTimeout


def _rasterise(data: bytes, px: int):
    """SVG bytes -> RGBA image, ``px`` square (aspect kept, centred): cairosvg, else resvg."""
    from PIL import Image

    try:
        import cairosvg

        png = cairosvg.svg2png(bytestring=data, output_width=px, output_height=px)
    except Exception as cairo_error:  # noqa: BLE001 - any parser/renderer failure: try the other one
        try:
            import resvg_py

            png = bytes(resvg_py.svg_to_bytes(svg_string=data.decode("utf-8", errors="replace"),
                                              width=px, height=px))
        except Exception:  # noqa: BLE001
            if isinstance(cairo_error, ET.ParseError) or type(cairo_error).__name__ in {
                    "ParseError", "EntitiesForbidden", "DTDForbidden", "ExternalReferenceForbidden"}:
                raise ValueError("svg parse error") from cairo_error
            raise ValueError(f"svg render error ({type(cairo_error).__name__})") from cairo_error
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGBA")


def _content_box(image) -> tuple[int, int, int, int] | None:
    """Bounding box of the visibly drawn pixels (alpha > 8), or ``None`` if nothing is drawn."""
    return image.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()


def render_svg(data: bytes, size: int = IMAGE_SIZE):
    """Rasterise SVG bytes to an RGBA ``PIL.Image`` cropped to the drawing (plus a small margin).

    Many drawings sit small on a large page (a map on an A4 sheet); cropping to what is drawn
    makes every image fill its square. Rendered at ``2 * size`` for smooth downsampling, and again
    up to 8x larger when the drawing covers under half of the page, so the crop stays sharp.
    Raises ``ValueError`` with a short reason when neither cairosvg nor resvg can render it.
    """
    render_px = size * _SUPERSAMPLE
    image = _rasterise(data, render_px)
    box = _content_box(image)
    if box is None:
        return image
    extent = max(box[2] - box[0], box[3] - box[1]) / render_px
    if extent < 0.5:
        render_px = min(render_px * 8, round(render_px / extent))
        image = _rasterise(data, render_px)
        box = _content_box(image) or (0, 0, render_px, render_px)
    margin = round(_MARGIN * max(box[2] - box[0], box[3] - box[1]))
    return image.crop((max(box[0] - margin, 0), max(box[1] - margin, 0),
                       min(box[2] + margin, image.width), min(box[3] + margin, image.height)))


def _is_blank(image) -> bool:
    """True if every pixel has one colour (nothing drawn, or white drawn on white)."""
    return all(lo == hi for lo, hi in image.getextrema())


def _silhouette(image):
    """The drawn shape in black, from the image's alpha channel."""
    from PIL import Image

    alpha = image.convert("RGBA").getchannel("A")
    return Image.merge("RGBA", (*[Image.new("L", image.size, 0)] * 3, alpha))


def _render_job(job: RenderJob) -> tuple[str, str | None]:
    """Produce one PNG (atomically); returns ``(job.out, skip reason or None)``. Never raises."""
    use_alarm = threading.current_thread() is threading.main_thread()
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, RENDER_TIMEOUT_S)
    try:
        if job.svg is not None:
            if len(job.svg) > MAX_SVG_BYTES:
                return job.out, "svg too large"
            image = render_svg(job.svg.encode("utf-8"))
        elif job.src is not None and job.src.lower().endswith((".svg", ".svgz")):
            if os.path.getsize(job.src) > MAX_SVG_BYTES:
                return job.out, "svg too large"
            image = render_svg(Path(job.src).read_bytes())
        else:
            image = open_image(job.src)
        square = to_square_rgb(image)
        if _is_blank(square):  # white drawn on white (Tux Paint's "colorable" stamps): its silhouette
            square = to_square_rgb(_silhouette(image))
        if _is_blank(square):
            return job.out, "blank render"
        with atomic_path(job.out) as tmp:
            square.save(tmp, format="PNG")
        return job.out, None
    except _RenderTimeout:
        return job.out, "render timeout"
    except ImageDecodeError as e:
        return job.out, getattr(e, "reason", "corrupt image")
    except ValueError as e:
        return job.out, str(e) if str(e).startswith("svg ") else f"render error ({type(e).__name__})"
    except Exception as e:  # noqa: BLE001 - one bad file must never stop a build
        return job.out, f"render error ({type(e).__name__})"
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def render_images(jobs: list[RenderJob], report: CorpusReport, *, desc: str, processes: int = 2) -> set[str]:
    """Render every job whose PNG is not cached yet; failures go to ``report`` by reason.

    Returns the ``out`` paths that exist afterwards (cached or newly rendered). Work runs in a
    pool of ``processes`` workers with a progress bar; images already on disk are reused.
    """
    done = {job.out for job in jobs if os.path.exists(job.out)}
    todo = [job for job in jobs if job.out not in done]
    where = {job.out: job.where for job in todo}
    report.extra["rendered"] = report.extra.get("rendered", 0)
    report.extra["cached_images"] = report.extra.get("cached_images", 0) + len(done)
    if todo:
        Path(todo[0].out).parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(todo), desc=desc, unit="img", disable=not todo)
    if processes > 1 and len(todo) >= _POOL_MIN_JOBS:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.imap_unordered(_render_job, todo, chunksize=4)
            for out, reason in results:
                _record(out, reason, where, done, report)
                bar.update()
    else:
        for job in todo:
            _record(*_render_job(job), where, done, report)
            bar.update()
    bar.close()
    return done


def _record(out: str, reason: str | None, where: dict[str, str], done: set[str], report: CorpusReport) -> None:
    if reason is None:
        done.add(out)
        report.extra["rendered"] += 1
    else:
        report.skip(reason, where[out])

