"""The game-icons corpus: the game-icons.net set (CC BY 3.0), captioned by icon name.

Source (fetched by :func:`fetch`): npm ``@iconify-json/game-icons`` (6 MB). Its ``icons.json`` maps
each icon name to a ``body``, the inner markup of an SVG (``<path fill="currentColor" d="…"/>``)
on a ``width``×``height`` canvas (default 512). We wrap each body in an ``<svg>`` with that
viewBox and ``color="#000"`` and render it black on white with cairosvg (faster than resvg on these
icons, and pixel-identical up to antialiasing).

Caption: the name with ``-`` -> space ("carnivorous-plant" -> "carnivorous plant"). ``group`` is
:func:`mmssl.data.iconsets.concept_of` of the caption (lower case, trailing variant numbers off), so
"battery-0" … "battery-100" share a split, and a concept drawn both here and in another icon set
("shopping cart") lands in the same split in both corpora. This
release of the package has no categories (its ``categories`` field is absent and ``info.json``
only says the whole set is "Thematic"), so records have no ``category``.

Skipped, counted by reason: aliases (another name for an icon already in the set), hidden icons
(kept in the set only for old links), and the 121 "abstract-001" … "abstract-121" patterns, whose
names describe nothing.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from mmssl.data.corpus import finish_build, saved_report, spread_sample
from mmssl.data.fetch import NPM_SOURCES, fetch_npm
from mmssl.data.iconify import read_icon_set, usable_icons
from mmssl.data.iconsets import concept_of
from mmssl.data.paths import corpus_dir, raw_dir
from mmssl.data.render import RenderJob, render_images
from mmssl.data.report import CorpusReport
from mmssl.data.splits import split_of

CORPUS = "game-icons"
_NON_DESCRIPTIVE = re.compile(r"^abstract-\d+$")


def package_dir() -> Path:
    return raw_dir("npm") / "@iconify-json__game-icons" / "package"


def fetch() -> None:
    """Fetch the npm package (6 MB); idempotent."""
    fetch_npm(NPM_SOURCES["game-icons"])


def caption_of(name: str) -> str:
    """``"carnivorous-plant"`` -> ``"carnivorous plant"``."""
    return name.replace("-", " ")


def _non_descriptive(name: str) -> str | None:
    return "non-descriptive name (abstract-NNN)" if _NON_DESCRIPTIVE.match(name) else None


def group_of(name: str) -> str:
    """``"battery-100"`` -> ``"battery"``: numbered variants of one icon stay together, under the
    concept key every image corpus shares (:func:`mmssl.data.iconsets.concept_of`)."""
    return concept_of(caption_of(name))


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
    data = read_icon_set(package_dir() / "icons.json")
    report = CorpusReport(CORPUS)
    icons = usable_icons(data, report, default_size=512, skip_name=_non_descriptive)  # (name, svg markup)
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
