"""The game-icons corpus: the game-icons.net set (CC BY 3.0), captioned by icon name.

Source (fetched by :func:`fetch`): npm ``@iconify-json/game-icons`` (6 MB). Its ``icons.json`` maps
each icon name to a ``body``, the inner markup of an SVG (``<path fill="currentColor" d="…"/>``)
on a ``width``×``height`` canvas (default 512). We wrap each body in an ``<svg>`` with that
viewBox and ``color="#000"`` and render it black on white with cairosvg (faster than resvg on these
icons, and pixel-identical up to antialiasing).

Caption: the name with ``-`` -> space ("carnivorous-plant" -> "carnivorous plant"). ``group`` is
the name without a trailing variant number, so "battery-0" … "battery-100" share a split. This
release of the package has no categories (its ``categories`` field is absent and ``info.json``
only says the whole set is "Thematic"), so records have no ``category``.

Skipped, counted by reason: aliases (another name for an icon already in the set), hidden icons
(kept in the set only for old links), and the 121 "abstract-001" … "abstract-121" patterns, whose
names describe nothing.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from mmssl.data.corpus import finish_build, saved_report, spread_sample
from mmssl.data.fetch import NPM_SOURCES, fetch_npm
from mmssl.data.paths import corpus_dir, raw_dir
from mmssl.data.render import RenderJob, render_images
from mmssl.data.report import CorpusReport
from mmssl.data.splits import split_of

CORPUS = "game-icons"
_NON_DESCRIPTIVE = re.compile(r"^abstract-\d+$")
_VARIANT_NUMBER = re.compile(r"-\d+$")
_TRANSFORMS = ("rotate", "hFlip", "vFlip")  # Iconify icon transforms; none in this set


def package_dir() -> Path:
    return raw_dir("npm") / "@iconify-json__game-icons" / "package"


def fetch() -> None:
    """Fetch the npm package (6 MB); idempotent."""
    fetch_npm(NPM_SOURCES["game-icons"])


def icon_svg(icon: dict, default_width: int = 512, default_height: int = 512) -> str:
    """A standalone black SVG document for one Iconify icon entry (``body`` and optional box)."""
    left, top = icon.get("left", 0), icon.get("top", 0)
    width, height = icon.get("width", default_width), icon.get("height", default_height)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="{left} {top} {width} {height}" color="#000">{icon["body"]}</svg>')


def caption_of(name: str) -> str:
    """``"carnivorous-plant"`` -> ``"carnivorous plant"``."""
    return name.replace("-", " ")


def group_of(name: str) -> str:
    """``"battery-100"`` -> ``"battery"``: numbered variants of one icon stay together."""
    return _VARIANT_NUMBER.sub("", name) or name


def build(out_dir: Path | None = None, *, force: bool = False, limit: int | None = None) -> CorpusReport:
    """Build the game-icons corpus (fetching the package if needed) and return its report.

    Args:
        out_dir: corpus folder; default ``data/corpora/game-icons``.
        force: rebuild the records even if a report exists (cached images are still reused).
        limit: keep only this many icons, evenly spread over the alphabet; for fast tests.
    """
    out_dir = Path(out_dir) if out_dir is not None else corpus_dir(CORPUS)
    if not force and (saved := saved_report(out_dir, limit)):
        return saved

    started = time.perf_counter()
    fetch()
    data = json.loads((package_dir() / "icons.json").read_text(encoding="utf-8"))
    width, height = data.get("width", 512), data.get("height", 512)
    report = CorpusReport(CORPUS)
    for alias in sorted(data.get("aliases", {})):
        report.skip("alias of another icon", alias)

    icons = []  # (name, svg markup)
    for name, icon in sorted(data["icons"].items()):
        if icon.get("hidden"):
            report.skip("hidden (deprecated) icon", name)
        elif _NON_DESCRIPTIVE.match(name):
            report.skip("non-descriptive name (abstract-NNN)", name)
        elif any(icon.get(t) for t in _TRANSFORMS):
            report.skip("unsupported icon transform", name)
        elif not isinstance(icon.get("body"), str) or not icon["body"].strip():
            report.skip("empty icon body", name)
        else:
            icons.append((name, icon_svg(icon, width, height)))
    found = len(icons)
    if limit is not None and limit < len(icons):
        report.extra["not_selected_by_limit"] = len(icons) - limit
        icons = spread_sample(icons, limit)

    image_dir = out_dir / "images"
    jobs = [RenderJob(out=str(image_dir / f"{name}.png"), where=name, svg=svg) for name, svg in icons]
    render_started = time.perf_counter()
    ok = render_images(jobs, report, desc="rendering game icons")
    render_seconds = time.perf_counter() - render_started

    records = []
    for (name, _), job in zip(icons, jobs):
        if job.out not in ok:
            continue
        group = group_of(name)
        records.append({
            "id": f"game-icons:{name}", "image": f"images/{name}.png", "text": caption_of(name),
            "captions": [caption_of(name)], "group": group, "split": split_of(group), "source": CORPUS,
        })
    return finish_build(records, report, out_dir, started,
        icons_in_package=len(data["icons"]),
        usable_icons=found,
        renderer="cairosvg",
        render_seconds=round(render_seconds, 2),
        limit=limit,
        sources={"game-icons": _fetched_marker()},
        licence="CC BY 3.0 (game-icons.net authors; see the package's info.json)")


def _fetched_marker() -> str:
    marker = raw_dir("npm") / "@iconify-json__game-icons" / ".fetched"
    return marker.read_text().strip() if marker.exists() else ""
