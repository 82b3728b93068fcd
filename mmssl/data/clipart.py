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

import re
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from mmssl.data.corpus import finish_build, saved_report, spread_sample
from mmssl.data.fetch import DEB_SOURCES, fetch_deb
from mmssl.data.paths import corpus_dir, raw_dir
from mmssl.data.render import RenderJob, render_images
from mmssl.data.report import CorpusReport
from mmssl.data.splits import split_of

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


def is_english_word(word: str, english: frozenset[str], parts: int = 3) -> bool:
    """In the word list, or a compound of up to ``parts`` listed words of 4+ letters ("piggybank";
    shorter parts make French words English: "sec" + "ours")."""
    if word in english or (word.endswith("s") and word[:-1] in english):
        return True
    return parts > 1 and any(word[:i] in english and is_english_word(word[i:], english, parts - 1)
                             for i in range(4, len(word) - 3))


def english_share(title: str, english: frozenset[str]) -> float:
    """Share of the title's words (2+ letters; camelCase split) that are English words."""
    words = [w.casefold() for w in _WORD.findall(_CAMEL.sub(" ", title))]
    words = [w for w in words if len(w) > 1] or words
    if not words:
        return 0.0
    return sum(is_english_word(w, english) for w in words) / len(words)


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
    return all(w[0].isupper() for w in words if len(w) > 1 and not is_english_word(w.casefold(), english))


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
# Build


def image_name(relative_path: str) -> str:
    """``"animals/mammals/cat_01.svg"`` -> ``"animals__mammals__cat_01.png"`` (unique, flat)."""
    return relative_path.removesuffix(".svg").replace("/", "__") + ".png"


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
    return finish_build(records, report, out_dir, started,
        **title_stats,
        categories=dict(Counter(r["category"] or "none" for r in records).most_common()),
        render_seconds=round(render_seconds, 2),
        limit=limit,
        sources={key: _fetched_marker(key) for key in ("openclipart", "english-words")},
        licence="public domain (Open Clip Art Library); word list: SCOWL (permissive)")


def _fetched_marker(key: str) -> str:
    marker = raw_dir("deb") / DEB_SOURCES[key].package / ".fetched"
    return marker.read_text().strip() if marker.exists() else ""
