"""The clipart corpus: Open Clip Art Library drawings captioned by their titles.

Source (fetched by :func:`fetch`): Debian ``openclipart-svg`` (0.18, ~7,500 public-domain SVGs under
``usr/share/openclipart/svg/<category>/...``). Each SVG carries RDF metadata::

    <cc:Work><dc:title>Cartoon Cat</dc:title>
      <dc:subject><rdf:Bag><rdf:li>animal</rdf:li><rdf:li>cat</rdf:li></rdf:Bag></dc:subject>
      <dc:creator><cc:Agent><dc:title>Author Name</dc:title></cc:Agent></dc:creator>

The title is the caption, the keywords extra captions, the top-level folder the ``category``. Titles
are noisy: most drawings were uploaded in batches under one collection name ("Lemon SVG theme" on
416 icons, "gramastar" on 1,375 stars), many are Italian or French, some are file names or the
author's name. :func:`filter_titles` drops those and counts every drop by reason; the Debian word
list ``wamerican`` tells English titles from others. ``group`` is the normalised title, so drawings
with the same title share a split.

Rendering: SVGs are rasterised with cairosvg (resvg as a fallback for files cairosvg refuses, e.g.
those declaring XML entities), in a worker pool, each file under a size cap and a time limit so one
pathological drawing cannot stall a build. The renderer here (:func:`render_images`) is shared by
the other SVG corpora (:mod:`mmssl.data.stamps`, :mod:`mmssl.data.game_icons`).
"""

from __future__ import annotations

import io
import multiprocessing
import os
import re
import signal
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mmssl.data.corpus import write_splits
from mmssl.data.fetch import DEB_SOURCES, fetch_deb
from mmssl.data.imageio import IMAGE_SIZE, ImageDecodeError, open_image, to_square_rgb
from mmssl.data.paths import corpus_dir, raw_dir
from mmssl.data.report import CorpusReport
from mmssl.data.splits import SPLITS, split_of

CORPUS = "clipart"
MAX_REPEATS = 5  # a title on more drawings than this names a series; keep this many of them
MIN_ENGLISH_SHARE = 0.5  # share of a title's words that must be English words
NO_CATEGORY = ("unsorted",)  # folders that are not a real label

_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "cc": "http://web.resource.org/cc/",
}
_DC_TITLE = f"{{{_NS['dc']}}}title"
_CC_AGENT = f"{{{_NS['cc']}}}Agent"


# ---------------------------------------------------------------------------------------------
# Sources


def svg_root() -> Path:
    source = DEB_SOURCES["openclipart"]
    return raw_dir("deb") / source.package / source.keep[0]


def english_words_path() -> Path:
    source = DEB_SOURCES["english-words"]
    return raw_dir("deb") / source.package / source.keep[0]


def fetch() -> None:
    """Fetch the SVGs (25 MB download) and the English word list (0.2 MB); idempotent."""
    fetch_deb(DEB_SOURCES["openclipart"])
    fetch_deb(DEB_SOURCES["english-words"])


def load_english_words(path: Path | None = None) -> frozenset[str]:
    """The word list, case-folded, possessives removed."""
    path = Path(path) if path is not None else english_words_path()
    words = path.read_text(encoding="utf-8", errors="replace").split()
    return frozenset(w.casefold().removesuffix("'s") for w in words)


@dataclass(frozen=True)
class ClipartMeta:
    """What one SVG says about itself."""

    path: str  # relative to the svg root, e.g. "animals/mammals/cat_01.svg"
    title: str  # raw dc:title of the work ("" when missing)
    keywords: tuple[str, ...]
    creator: str  # "" when missing

    @property
    def category(self) -> str | None:
        top = self.path.split("/", 1)[0] if "/" in self.path else None
        return None if top in NO_CATEGORY else top


def read_metadata(path: Path, root: Path) -> ClipartMeta:
    """Read title, keywords and creator from an SVG's RDF metadata (raises ``ET.ParseError``).

    The work's title is the ``dc:title`` directly under ``cc:Work`` (or any ``dc:title`` not inside
    a ``cc:Agent``: those are person names).
    """
    tree = ET.parse(path)
    title, keywords, creator = None, [], ""
    for work in tree.getroot().iter(f"{{{_NS['cc']}}}Work"):
        node = work.find("dc:title", _NS)
        if node is not None and title is None:
            title = node.text or ""
        keywords += [li.text or "" for li in work.findall("dc:subject/rdf:Bag/rdf:li", _NS)]
        keywords += [node.text or "" for node in work.findall("dc:subject", _NS) if node.text and node.text.strip()]
        agent = work.find("dc:creator/cc:Agent/dc:title", _NS)
        if agent is not None and not creator:
            creator = (agent.text or "").strip()
    if title is None:
        for parent in tree.getroot().iter():
            if parent.tag == _CC_AGENT:
                continue
            node = parent.find(_DC_TITLE)
            if node is not None:
                title = node.text or ""
                break
    return ClipartMeta(path=path.relative_to(root).as_posix(), title=title or "",
                       keywords=tuple(k.strip() for k in keywords), creator=creator)


# ---------------------------------------------------------------------------------------------
# Title cleaning and filtering

_CLIPART_BY = re.compile(r"^\s*clip\s*-?\s*arts?\s+by\s+[^-:]+[-:]\s*", re.IGNORECASE)  # "Clipart by X - title"
_TRAILING_NUMBER = re.compile(r"\s+\d+$")  # "tree 3" -> "tree"
_UNTITLED = re.compile(
    r"^(untitled|no title|unnamed|without title|sans titre|senza titolo|sin t[ií]tulo|ohne titel|title|"
    r"drawing|image|picture|clipart|clip art|new document|svg|layer|dibujo|disegno|dessin)$")
# Underscores, an extension, or lower-case letters glued to digits ("head1", "fc23"; not "AK47", "3D").
_FILE_NAME = re.compile(r"_|\.(svg|png|jpe?g|gif|ai|eps)$|[a-z]{2,}\d|\d[a-z]{2,}")
_COLLECTION = re.compile(
    r"\b(collection|theme|themes|icon\s?set|iconset|icons|cliparts?|clip arts|submission|sibmission|"
    r"series|various|set of|symbol signs|part of)\b|-theme\b|^svg\b", re.IGNORECASE)
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_WORD = re.compile(r"[^\W\d_]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z][a-z])")  # "LeafRake" -> "Leaf Rake"
# Italian/French/German/Spanish function words that are not English words: one marks a title as
# foreign even when its nouns happen to be English ("Casa in campagna", "danger de mort").
_FOREIGN_FUNCTION_WORDS = frozenset(
    "di del della delle dei degli il gli ed una uno per nel nella sul sulla col dal le les des du de et "
    "pour avec sur une aux der das und mit ein eine von zu los las ne pas al io".split())
_JUNK_KEYWORDS = frozenset({"hash", "unsorted", "special", "mapsym", "networksym", "clipart", "clip art",
                            "svg", "openclipart", "lemon theme icon", "appicon"})


def clean_title(raw: str) -> str:
    """Normalise a raw ``dc:title``: whitespace collapsed, "Clipart by X - " prefix, wrapping
    quotes and a trailing variant number dropped. ``"Clipart by Nicu Buculei - pear 2"`` -> ``"pear"``."""
    title = " ".join(raw.split())
    title = _CLIPART_BY.sub("", title)
    title = title.strip(" \"'“”‘’`-:;,.")
    if re.fullmatch(r"[A-Za-z]+\d+", title):  # "bee1", "clock12": a file name's variant number
        title = title.rstrip("0123456789")
    if " " not in title and not _FILE_NAME.search(title):  # "lightbulb-lit", "LeafRake"
        title = _CAMEL.sub(" ", title.replace("-", " "))
    without_number = _TRAILING_NUMBER.sub("", title)
    return without_number if re.search(r"[^\W\d_]", without_number) else title


def title_key(title: str) -> str:
    """Titles equal up to case and punctuation share one key (the split group)."""
    return " ".join(re.sub(r"[\W_]+", " ", title.casefold()).split())


def _is_english(word: str, english: frozenset[str], parts: int = 3) -> bool:
    """In the word list, or a compound of up to ``parts`` listed words of 4+ letters ("piggybank";
    shorter parts make French words English: "sec" + "ours")."""
    if word in english or (word.endswith("s") and word[:-1] in english):
        return True
    return parts > 1 and any(word[:i] in english and _is_english(word[i:], english, parts - 1)
                             for i in range(4, len(word) - 3))


def english_share(title: str, english: frozenset[str]) -> float:
    """Share of the title's words (2+ letters; camelCase split) that are English words."""
    words = [w.casefold() for w in _WORD.findall(_CAMEL.sub(" ", title))]
    words = [w for w in words if len(w) > 1] or words
    if not words:
        return 0.0
    return sum(_is_english(w, english) for w in words) / len(words)


def is_english_title(title: str, english: frozenset[str]) -> bool:
    """Most words English, no foreign function word; at exactly half, the other words must be
    capitalised (names: "France - Anjou", "Brunei Darussalam"), not lower-case ("premiers secours")."""
    words = _WORD.findall(_CAMEL.sub(" ", title))
    if any(w.casefold() in _FOREIGN_FUNCTION_WORDS for w in words):
        return False
    share = english_share(title, english)
    if share > MIN_ENGLISH_SHARE:
        return True
    if share < MIN_ENGLISH_SHARE:
        return False
    return all(w[0].isupper() for w in words if len(w) > 1 and not _is_english(w.casefold(), english))


def title_problem(title: str, creator: str, english: frozenset[str], authors: frozenset[str]) -> str | None:
    """Why a cleaned title is not a usable caption, or ``None`` if it is.

    Reasons (checked in this order): "empty title", "untitled", "no words (digits or punctuation
    only)", "file-name-like title", "author name", "collection or set name", "non-English title".
    """
    key = title_key(title)
    if not key:
        return "empty title" if not title.strip() else "no words (digits or punctuation only)"
    if _UNTITLED.match(re.sub(r"\s*\d+$", "", key)):
        return "untitled"
    if not re.search(r"[^\W\d_]", title):
        return "no words (digits or punctuation only)"
    if _FILE_NAME.search(title):
        return "file-name-like title"
    if _EMAIL.search(title) or key in authors or (creator and key == title_key(creator)):
        return "author name"
    if _COLLECTION.search(title) or re.search(r"\bby\s+[A-Z]", title):
        return "collection or set name"
    if not is_english_title(title, english):
        return "non-English title"
    return None


def filter_titles(metas: list[ClipartMeta], english: frozenset[str], max_repeats: int = MAX_REPEATS
                  ) -> tuple[list[tuple[ClipartMeta, str]], list[tuple[ClipartMeta, str]]]:
    """Split drawings into kept ``(meta, clean title)`` and dropped ``(meta, reason)``.

    A title that passes :func:`title_problem` but is shared by more than ``max_repeats`` drawings
    names a series ("card" on 226 playing cards); ``max_repeats`` of them, evenly spread, are kept
    and the rest dropped as "repeated title".
    """
    # Only multi-word names: a one-word user name can be a real title ("Tux").
    authors = frozenset(title_key(m.creator) for m in metas if " " in title_key(m.creator))
    dropped: list[tuple[ClipartMeta, str]] = []
    by_key: dict[str, list[tuple[ClipartMeta, str]]] = defaultdict(list)
    for meta in metas:
        title = clean_title(meta.title)
        reason = title_problem(title, meta.creator, english, authors)
        if reason:
            dropped.append((meta, reason))
        else:
            by_key[title_key(title)].append((meta, title))
    kept = []
    for items in by_key.values():
        chosen = set(spread_sample(list(range(len(items))), max_repeats))
        for i, item in enumerate(items):
            if i in chosen:
                kept.append(item)
            else:
                dropped.append((item[0], f"repeated title (more than {max_repeats})"))
    kept.sort(key=lambda item: item[0].path)
    return kept, dropped


def clean_keywords(keywords: tuple[str, ...], title: str, creator: str) -> list[str]:
    """Keywords as extra captions: ``_`` -> space, junk (``hash``, hex ids, author names, numbers)
    and duplicates of the title removed."""
    out, seen = [], {title_key(title), title_key(creator)}
    for keyword in keywords:
        keyword = " ".join(keyword.replace("_", " ").split())
        key = title_key(keyword)
        if (not key or key in seen or key in _JUNK_KEYWORDS or not re.search(r"[^\W\d_]", key)
                or re.fullmatch(r"0x[0-9a-f]+", key)):
            continue
        seen.add(key)
        out.append(keyword)
    return out


# ---------------------------------------------------------------------------------------------
# Rendering (shared by the SVG corpora)

RENDER_TIMEOUT_S = 30.0  # per image; the slowest real drawing here takes ~3 s
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
        tmp = job.out + ".tmp"
        square.save(tmp, format="PNG")
        os.replace(tmp, job.out)
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


# ---------------------------------------------------------------------------------------------
# Build


def spread_sample(items: list, limit: int | None) -> list:
    """``limit`` items evenly spread over ``items`` (first one included)."""
    if limit is None or limit >= len(items):
        return items
    return [items[i * len(items) // limit] for i in range(max(limit, 0))]


def image_name(relative_path: str) -> str:
    """``"animals/mammals/cat_01.svg"`` -> ``"animals__mammals__cat_01.png"`` (unique, flat)."""
    return relative_path.removesuffix(".svg").replace("/", "__") + ".png"


def saved_report(out_dir: Path, limit: int | None) -> CorpusReport | None:
    report_path = out_dir / "report.json"
    if report_path.exists() and all((out_dir / f"{s}.jsonl").exists() for s in SPLITS):
        saved = CorpusReport.load(report_path)
        if saved.extra.get("limit") == limit:
            return saved
    return None


def build(out_dir: Path | None = None, *, force: bool = False, limit: int | None = None) -> CorpusReport:
    """Build the clipart corpus (fetching the sources if needed) and return its report.

    Args:
        out_dir: corpus folder; default ``data/corpora/clipart``.
        force: rebuild the records even if a report exists (cached images are still reused).
        limit: keep only this many drawings (after title filtering), evenly spread; for fast tests.
    """
    out_dir = Path(out_dir) if out_dir is not None else corpus_dir(CORPUS)
    if not force and (saved := saved_report(out_dir, limit)):
        return saved

    started = time.perf_counter()
    fetch()
    root = svg_root()
    report = CorpusReport(CORPUS)
    metas = []
    for path in sorted(root.rglob("*.svg")):
        where = path.relative_to(root).as_posix()
        if path.is_symlink():  # the package links one drawing into several folders
            report.skip("symlink to another drawing", where)
            continue
        try:
            metas.append(read_metadata(path, root))
        except (ET.ParseError, UnicodeDecodeError, ValueError):
            report.skip("svg parse error", where)
    kept, dropped = filter_titles(metas, load_english_words())
    for meta, reason in sorted(dropped, key=lambda item: item[0].path):
        report.skip(reason, f"{meta.path}: {meta.title!r}")
    title_stats = {"drawings": len(metas), "kept_titles": len(kept),
                   "distinct_titles": len({title_key(t) for _, t in kept})}
    if limit is not None and limit < len(kept):
        report.extra["not_selected_by_limit"] = len(kept) - limit
        kept = spread_sample(kept, limit)

    image_dir = out_dir / "images"
    jobs = [RenderJob(out=str(image_dir / image_name(meta.path)), where=meta.path, src=str(root / meta.path))
            for meta, _ in kept]
    render_started = time.perf_counter()
    ok = render_images(jobs, report, desc="rendering clipart")
    render_seconds = time.perf_counter() - render_started

    records = []
    for (meta, title), job in zip(kept, jobs):
        if job.out not in ok:
            continue
        group = title_key(title)
        records.append({
            "id": f"clipart:{meta.path.removesuffix('.svg')}", "image": f"images/{image_name(meta.path)}",
            "text": title, "captions": [title, *clean_keywords(meta.keywords, title, meta.creator)],
            "group": group, "split": split_of(group), "source": CORPUS, "category": meta.category,
        })
    report.pairs = write_splits(records, out_dir)
    report.extra.update({
        **title_stats,
        "groups_per_split": {s: len({r["group"] for r in records if r["split"] == s}) for s in SPLITS},
        "categories": dict(Counter(r["category"] or "none" for r in records).most_common()),
        "render_seconds": round(render_seconds, 2),
        "build_seconds": round(time.perf_counter() - started, 2),
        "limit": limit,
        "sources": {key: _fetched_marker(key) for key in ("openclipart", "english-words")},
        "licence": "public domain (Open Clip Art Library); word list: SCOWL (permissive)",
    })
    report.save(out_dir / "report.json")
    return report


def _fetched_marker(key: str) -> str:
    marker = raw_dir("deb") / DEB_SOURCES[key].package / ".fetched"
    return marker.read_text().strip() if marker.exists() else ""
