"""Reading one Iconify icon set (an ``IconifyJSON`` file) into standalone SVG documents.

Shared by the game-icons, icon-set and emoji-artwork corpora. An Iconify set maps each icon name to
a ``body``, the inner markup of an SVG (``<path fill="currentColor" d="…"/>``) on a
``width``×``height`` canvas (set-wide defaults, 16 if absent, per-icon overrides). We wrap each body
in an ``<svg>`` with that viewBox and ``color="#000"``: monochrome sets draw in ``currentColor``, so
they render black on white; palette sets carry their own colours and keep them.

The large corpora read every set from one pinned package, npm ``@iconify/json`` (see
:func:`fetch`): ``json/<prefix>.json`` per set, each with its ``info`` (name, author, licence,
palette). Reserved sets (:mod:`mmssl.data.reserved`) are left out when the package is unpacked,
so they are never on disk, and :func:`list_sets` skips any that appear anyway.

Skipped, counted by reason: aliases (another name for an icon already in the set), hidden icons
(kept in a set only for old links), icons with rotate/flip transforms (Iconify applies those in
its own renderer) and empty bodies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from mmssl.data.fetch import NPM_SOURCES, fetch_npm
from mmssl.data.paths import raw_dir
from mmssl.data.render import RenderJob, render_images
from mmssl.data.report import CorpusReport
from mmssl.data.reserved import is_reserved_image_source

ICONIFY_DEFAULT_SIZE = 16  # the IconifyJSON default when a set gives no width/height
_TRANSFORMS = ("rotate", "hFlip", "vFlip")


def package_dir() -> Path:
    """The unpacked ``@iconify/json`` package (``json/``, ``collections.json``, ``package.json``)."""
    return raw_dir("npm") / "@iconify__json" / "package"


def _reserved_member(member: str) -> bool:
    return is_reserved_image_source(member.rsplit("/", 1)[-1])


def fetch() -> None:
    """Fetch ``@iconify/json`` (104 MB download) without its reserved sets; idempotent."""
    fetch_npm(NPM_SOURCES["iconify-json"], exclude=_reserved_member)


def package_version(package: Path) -> str:
    """``"@iconify/json@2.2.535"`` from the package's own ``package.json`` (``""`` if absent)."""
    meta = Path(package) / "package.json"
    if not meta.exists():
        return ""
    data = json.loads(meta.read_text(encoding="utf-8"))
    return f"{data.get('name', '')}@{data.get('version', '')}"


def list_sets(package: Path, report: CorpusReport | None = None) -> dict[str, Path]:
    """Set prefix -> its ``json/<prefix>.json``, in prefix order, reserved sets skipped by reason."""
    sets = {}
    for path in sorted((Path(package) / "json").glob("*.json")):
        if is_reserved_image_source(path.stem):
            if report is not None:
                report.skip("set: reserved source (deny list)", path.stem)
        else:
            sets[path.stem] = path
    return sets


def read_icon_set(path: Path) -> dict:
    """One IconifyJSON file as a dict (``prefix``, ``info``, ``icons``, ``aliases``, ``chars`` …)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


UNREADABLE_SET = "set: unreadable JSON"


def open_icon_set(prefix: str, path: Path, report: CorpusReport) -> dict | None:
    """The set, or None (counted in ``report`` by reason) when its file is not an IconifyJSON object."""
    try:
        data = read_icon_set(path)
    except (OSError, ValueError):  # JSON and UTF-8 errors are ValueErrors
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("icons", {}), dict):
        report.skip(UNREADABLE_SET, prefix)
        return None
    return data


def set_summary(prefix: str, data: dict) -> dict:
    """What a corpus report records of a set: name, licence (SPDX), author, palette, icon count."""
    from mmssl.data.licences import spdx_of

    info = set_info(data)
    author = info.get("author")
    return {"name": info.get("name", prefix), "licence": spdx_of(info) or None,
            "author": author.get("name") if isinstance(author, dict) else None,
            "palette": bool(info.get("palette")), "icons": len(data.get("icons", {}))}


def set_info(data: dict) -> dict:
    """The set's ``info`` block (``{}`` when absent or malformed)."""
    info = data.get("info")
    return info if isinstance(info, dict) else {}


def icon_svg(icon: dict, default_width: int = 512, default_height: int = 512) -> str:
    """A standalone black SVG document for one Iconify icon entry (``body`` and optional box)."""
    left, top = icon.get("left", 0), icon.get("top", 0)
    width, height = icon.get("width", default_width), icon.get("height", default_height)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="{left} {top} {width} {height}" color="#000">{icon["body"]}</svg>')


def usable_icons(data: dict, report: CorpusReport, *, where: str = "",
                 skip_name: Callable[[str], str | None] | None = None,
                 default_size: int = ICONIFY_DEFAULT_SIZE) -> list[tuple[str, str]]:
    """``(name, svg markup)`` of every drawable icon of a set, in name order; the rest go to ``report``.

    Args:
        data: the set (see :func:`read_icon_set`).
        where: prefix for the report's examples (``"mdi:"``), so a skipped icon can be found.
        skip_name: name -> a skip reason, or None to keep (e.g. names that describe nothing).
        default_size: canvas size when the set gives none.
    """
    width, height = data.get("width", default_size), data.get("height", default_size)
    for alias in sorted(data.get("aliases", {})):
        report.skip("alias of another icon", where + alias)
    icons = []
    for name, icon in sorted(data.get("icons", {}).items()):
        reason = _icon_problem(icon) or (skip_name(name) if skip_name else None)
        if reason:
            report.skip(reason, where + name)
        else:
            icons.append((name, icon_svg(icon, width, height)))
    return icons


def _icon_problem(icon: dict) -> str | None:
    if icon.get("hidden"):
        return "hidden (deprecated) icon"
    if any(icon.get(t) for t in _TRANSFORMS):
        return "unsupported icon transform"
    if not isinstance(icon.get("body"), str) or not icon["body"].strip():
        return "empty icon body"
    return None


def icon_image(prefix: str, name: str) -> str:
    """Where a corpus keeps one set's rendered icon, relative to the corpus folder."""
    return f"images/{prefix}/{name}.png"


def render_icons(icons: list[tuple[str, str, str]], out_dir: Path, report: CorpusReport, *, desc: str,
                 processes: int = 2) -> tuple[list[bool], dict]:
    """Render ``(set prefix, icon name, svg)`` to ``<out_dir>/images/<prefix>/<name>.png`` (cached).

    Returns, in input order, whether each image exists afterwards, and the facts a report records
    (renderer, seconds, images rendered per second).
    """
    for prefix in {prefix for prefix, _, _ in icons}:
        (Path(out_dir) / "images" / prefix).mkdir(parents=True, exist_ok=True)
    jobs = [RenderJob(out=str(Path(out_dir) / icon_image(prefix, name)), where=f"{prefix}:{name}", svg=svg)
            for prefix, name, svg in icons]
    started = time.perf_counter()
    ok = render_images(jobs, report, desc=desc, processes=processes)
    seconds = time.perf_counter() - started
    rendered = report.extra.get("rendered", 0)
    facts = {"renderer": "cairosvg", "render_seconds": round(seconds, 2),
             "render_rate_per_s": round(rendered / seconds, 1) if rendered else None}
    return [job.out in ok for job in jobs], facts
