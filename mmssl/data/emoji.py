"""The emoji corpus: every emoji Noto Color Emoji can draw, named by Unicode CLDR.

Sources (fetched by :func:`fetch`, see :mod:`mmssl.data.fetch`):

* the glyphs: Debian ``fonts-noto-color-emoji`` (``NotoColorEmoji.ttf``, a CBDT bitmap font that
  FreeType only scales from its one strike, size 109, and Pillow only draws in colour with
  ``embedded_color=True``; ZWJ sequences, flags and keycaps need the raqm layout engine);
* the names: CLDR English annotations from Debian ``unicode-cldr-core`` (``type="tts"`` is the
  short name, the other entry for the same characters its ``|``-separated keywords), then Unicode's
  ``emoji-test.txt`` (Debian ``unicode-data``; also gives the group, e.g. "Smileys & Emotion", and
  the canonical order), then the PyPI ``emoji`` package, whose names and aliases are extra captions;
* the set: every fully-qualified emoji of the ``emoji`` package or ``emoji-test.txt``. Those the
  font lacks (newer than the font, or skin-tone pairs it does not ligate) are skipped by reason.

Each emoji becomes one record (schema in :mod:`mmssl.data.corpus`); ``group`` is the base emoji, so
all skin-tone variants of one emoji share a split. Rendered images are cached as 128×128 RGB PNGs in
``<corpus>/images/<codepoints>.png`` and reused by later builds.
"""

from __future__ import annotations

import multiprocessing
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import emoji as emoji_package
from tqdm import tqdm

from mmssl.data.corpus import write_splits
from mmssl.data.fetch import DEB_SOURCES, fetch_deb
from mmssl.data.imageio import to_square_rgb
from mmssl.data.paths import corpus_dir, raw_dir
from mmssl.data.report import CorpusReport
from mmssl.data.splits import SPLITS, split_of
from mmssl.io import atomic_path

CORPUS = "emoji"
FONT_SIZE = 109  # the only size of NotoColorEmoji's bitmap strike; other sizes fail to load
VS16 = "\ufe0f"  # emoji presentation selector: CLDR and emoji-test.txt disagree on where it appears
SKIN_TONES = frozenset(chr(c) for c in range(0x1F3FB, 0x1F400))  # Fitzpatrick modifiers 1-2 .. 6
# Multi-person emoji whose neutral form is one code point while their skin-tone forms are ZWJ
# sequences (UTS #51 "multi-person groupings"): stripping the tones alone would split them apart.
_NEUTRAL_FORM = {
    "\U0001faf1\u200d\U0001faf2": "\U0001f91d",  # rightwards + leftwards hand -> handshake
    "\U0001f9d1\u200d\u2764\u200d\U0001f48b\u200d\U0001f9d1": "\U0001f48f",  # kiss
    "\U0001f9d1\u200d\u2764\u200d\U0001f9d1": "\U0001f491",  # couple with heart
    "\U0001f469\u200d\U0001f91d\u200d\U0001f468": "\U0001f46b",  # woman and man holding hands
    "\U0001f469\u200d\U0001f91d\u200d\U0001f469": "\U0001f46d",  # women holding hands
    "\U0001f468\u200d\U0001f91d\u200d\U0001f468": "\U0001f46c",  # men holding hands
    "\U0001f9d1\u200d\U0001f430\u200d\U0001f9d1": "\U0001f46f",  # people with bunny ears (Emoji 17)
    "\U0001f468\u200d\U0001f430\u200d\U0001f468": "\U0001f46f\u200d\u2642",  # men with bunny ears
    "\U0001f469\u200d\U0001f430\u200d\U0001f469": "\U0001f46f\u200d\u2640",  # women with bunny ears
    "\U0001f9d1\u200d\U0001faef\u200d\U0001f9d1": "\U0001f93c",  # people wrestling (Emoji 17)
    "\U0001f468\u200d\U0001faef\u200d\U0001f468": "\U0001f93c\u200d\u2642",  # men wrestling
    "\U0001f469\u200d\U0001faef\u200d\U0001f469": "\U0001f93c\u200d\u2640",  # women wrestling
}
_POOL_MIN_JOBS = 300  # below this a worker pool costs more than it saves
_RENDER_PROCESSES = 2


@dataclass(frozen=True)
class EmojiEntry:
    """One fully-qualified emoji and everything we know about it."""

    emoji: str  # the fully-qualified sequence, as rendered
    name: str  # short name: CLDR tts, else emoji-test.txt, else the emoji package
    captions: tuple[str, ...]  # name first, then keywords and aliases, deduplicated
    base: str  # skin tones and VS16 removed: the split group
    category: str | None  # emoji-test.txt group, e.g. "Smileys & Emotion"
    subcategory: str | None  # emoji-test.txt subgroup, e.g. "face-smiling"

    @property
    def codepoints(self) -> str:
        return codepoints(self.emoji)


def codepoints(seq: str) -> str:
    """``"👍🏽"`` -> ``"1f44d-1f3fd"``: the file-name and id form of a sequence."""
    return "-".join(f"{ord(c):x}" for c in seq)


def _strip_vs16(seq: str) -> str:
    return seq.replace(VS16, "")


def base_emoji(seq: str) -> str:
    """The emoji without skin tones and VS16: ``"👍🏽"`` -> ``"👍"``, ``"🫱🏻‍🫲🏿"`` -> ``"🤝"``."""
    base = "".join(c for c in _strip_vs16(seq) if c not in SKIN_TONES)
    return _NEUTRAL_FORM.get(base, base)


# ---------------------------------------------------------------------------------------------
# Sources


def _source_file(key: str, member: int = 0) -> Path:
    source = DEB_SOURCES[key]
    return raw_dir("deb") / source.package / source.keep[member]


def font_path() -> Path:
    return _source_file("emoji-font")


def fetch() -> None:
    """Fetch the font, the CLDR annotations and emoji-test.txt (idempotent; fast once fetched)."""
    for key in ("emoji-font", "cldr", "emoji-test"):
        fetch_deb(DEB_SOURCES[key])


def read_cldr_annotations(paths: list[Path]) -> dict[str, tuple[str | None, list[str]]]:
    """CLDR annotation files -> {sequence without VS16: (tts name, keywords)}.

    Later files fill gaps of earlier ones (``annotations/en.xml`` names the base emoji,
    ``annotationsDerived/en.xml`` the skin-tone, gender and flag sequences).
    """
    out: dict[str, tuple[str | None, list[str]]] = {}
    for path in paths:
        for node in ET.parse(path).getroot().iter("annotation"):
            key = _strip_vs16(node.get("cp", ""))
            text = (node.text or "").strip()
            if not key or not text:
                continue
            name, keywords = out.get(key, (None, []))
            if node.get("type") == "tts":
                name = name or text
            elif not keywords:
                keywords = [k.strip() for k in text.split("|") if k.strip()]
            out[key] = (name, keywords)
    return out


@dataclass(frozen=True)
class _TestLine:
    order: int
    sequence: str  # as written in the file (fully-qualified lines keep their VS16)
    status: str
    group: str
    subgroup: str
    name: str


def read_emoji_test(path: Path) -> dict[str, _TestLine]:
    """Unicode ``emoji-test.txt`` -> {sequence without VS16: order, status, group, subgroup, name}.

    Keeps the first (fully-qualified) line for each VS16-stripped sequence.
    """
    line_re = re.compile(r"^([0-9A-F ]+?)\s*;\s*([\w-]+)\s*#\s*\S+\s+E[\d.]+\s+(.+)$")
    out: dict[str, _TestLine] = {}
    group = subgroup = ""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif (m := line_re.match(line)):
            seq = "".join(chr(int(h, 16)) for h in m.group(1).split())
            key = _strip_vs16(seq)
            if key not in out or m.group(2) == "fully-qualified":
                out[key] = _TestLine(len(out), seq, m.group(2), group, subgroup, m.group(3).strip())
    return out


def _caption_key(text: str) -> str:
    """Captions that differ only in case, punctuation or ``_`` count as one."""
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


def _from_emoji_package(short_code: str) -> str:
    """``":thumbs_up_light_skin_tone:"`` -> ``"thumbs up light skin tone"``."""
    return short_code.strip(":").replace("_", " ").strip()


_TONE = r"(?:light|medium-light|medium|medium-dark|dark) skin tone"
_TRAILING_TONES = re.compile(rf"^(.*?) ({_TONE}(?: {_TONE})*)$")


def _cldr_style(name: str) -> str:
    """``"man running facing right light skin tone"`` -> ``"man running facing right: light skin
    tone"``, as CLDR writes the names the emoji package has to supply for newer emoji."""
    m = _TRAILING_TONES.match(name)
    if not m:
        return name
    tones = re.findall(_TONE, m.group(2))
    return f"{m.group(1)}: {', '.join(tones)}"


def emoji_entries() -> list[EmojiEntry]:
    """All fully-qualified emoji, named and categorised, in Unicode's order (newer ones last)."""
    cldr = read_cldr_annotations([_source_file("cldr", 0), _source_file("cldr", 1)])
    test = read_emoji_test(_source_file("emoji-test"))
    fully_qualified = emoji_package.STATUS["fully_qualified"]

    sequences = [s for s, d in emoji_package.EMOJI_DATA.items() if d["status"] == fully_qualified]
    known = {_strip_vs16(s) for s in sequences}
    sequences += [t.sequence for k, t in test.items() if t.status == "fully-qualified" and k not in known]

    def sort_key(seq: str):
        line = test.get(_strip_vs16(seq))
        return (0, line.order, "") if line else (1, 0, seq)

    entries = []
    for seq in sorted(sequences, key=sort_key):
        key = _strip_vs16(seq)
        package = emoji_package.EMOJI_DATA.get(seq, {})
        tts, keywords = cldr.get(key, (None, []))
        line = test.get(key)
        package_name = _from_emoji_package(package.get("en", "")) if package else ""
        name = tts or (line.name if line else "") or _cldr_style(package_name)
        aliases = [package_name] + [_from_emoji_package(a) for a in package.get("alias", [])]
        captions, seen = [], set()
        for caption in [name, *keywords, *aliases]:
            if caption and _caption_key(caption) not in seen:
                seen.add(_caption_key(caption))
                captions.append(caption)
        category = _category_line(seq, test)
        entries.append(EmojiEntry(
            emoji=seq, name=name, captions=tuple(captions), base=base_emoji(seq),
            category=category.group if category else None,
            subcategory=category.subgroup if category else None))
    return entries


def _category_line(seq: str, test: dict[str, _TestLine]) -> _TestLine | None:
    """The emoji-test.txt line whose group applies: the emoji itself, else its base, else its first
    component (emoji newer than the file are mostly sequences of older ones: 🐦‍🔥 is a bird)."""
    for key in (_strip_vs16(seq), base_emoji(seq), _strip_vs16(seq)[:1]):
        if key in test:
            return test[key]
    return None


# ---------------------------------------------------------------------------------------------
# Rendering


class EmojiRenderer:
    """Draws one emoji sequence with Noto Color Emoji, or says why the font cannot.

    A sequence the font lacks does not raise: FreeType draws ``.notdef`` (blank in this font),
    raqm lays an unknown ZWJ sequence out as several glyphs side by side, and an unknown flag
    becomes the font's "?" flag. Each is detected against the font's own rendering of a sequence
    known to be missing.
    """

    def __init__(self, path: Path | None = None):
        from PIL import ImageFont

        path = Path(path) if path is not None else font_path()
        if not path.exists():
            raise FileNotFoundError(f"{path} missing; run mmssl.data.emoji.fetch() first")
        self.font = ImageFont.truetype(str(path), FONT_SIZE, layout_engine=ImageFont.Layout.RAQM)
        reference = "\U0001f600"  # grinning face: every version of the font has it
        self.advance = self.font.getlength(reference)  # one glyph's width, 136 px
        left, top, right, bottom = self.font.getbbox(reference)
        self.canvas_size = (max(right, round(self.advance)), bottom)  # (136, 128)
        self._placeholders = {
            self._draw("\u0378").tobytes(): "no glyph in font (.notdef)",  # an unassigned code point
            self._draw("\U0001f1e6\U0001f1e6").tobytes(): "unknown flag (font's '?' flag)",  # no country AA
        }

    def _draw(self, seq: str):
        from PIL import Image, ImageDraw

        canvas = Image.new("RGBA", self.canvas_size, (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((0, 0), seq, font=self.font, embedded_color=True)
        return canvas

    def render(self, seq: str):
        """``(image, None)`` with the glyph on a transparent canvas, or ``(None, reason)``."""
        if abs(self.font.getlength(seq) - self.advance) > 0.5:
            return None, "not in font (drawn as several glyphs)"
        image = self._draw(seq)
        if image.getchannel("A").getextrema()[1] == 0:
            return None, "no glyph in font (blank)"
        placeholder = self._placeholders.get(image.tobytes())
        if placeholder:
            return None, placeholder
        return image, None


_worker_renderer: EmojiRenderer | None = None


def _init_worker(path: str) -> None:
    global _worker_renderer
    _worker_renderer = EmojiRenderer(Path(path))


def _render_to_file(job: tuple[str, str]) -> tuple[str, str | None]:
    """Render one sequence to a PNG (atomically); returns (sequence, skip reason or None)."""
    seq, out_path = job
    image, reason = _worker_renderer.render(seq)
    if image is None:
        return seq, reason
    with atomic_path(out_path) as tmp:
        to_square_rgb(image).save(tmp, format="PNG", optimize=False)
    return seq, None


def _render_all(jobs: list[tuple[str, str]], processes: int) -> dict[str, str | None]:
    """Render jobs with a progress bar, in a worker pool when there are enough of them."""
    results: dict[str, str | None] = {}
    bar = tqdm(total=len(jobs), desc="rendering emoji", unit="img", disable=not jobs)
    path = str(font_path())
    if processes > 1 and len(jobs) >= _POOL_MIN_JOBS:
        with multiprocessing.Pool(processes, _init_worker, (path,)) as pool:
            for seq, reason in pool.imap_unordered(_render_to_file, jobs, chunksize=16):
                results[seq] = reason
                bar.update()
    else:
        _init_worker(path)
        for job in jobs:
            seq, reason = _render_to_file(job)
            results[seq] = reason
            bar.update()
    bar.close()
    return results


# ---------------------------------------------------------------------------------------------
# Build


def _spread(items: list, limit: int | None) -> list:
    """``limit`` items evenly spread over ``items`` (first one included), so a small sample still
    covers every category and some emoji with skin tones."""
    if limit is None or limit >= len(items):
        return items
    return [items[i * len(items) // limit] for i in range(max(limit, 0))]


def build(out_dir: Path | None = None, *, force: bool = False, limit: int | None = None) -> CorpusReport:
    """Build the emoji corpus (fetching the sources if needed) and return its report.

    Args:
        out_dir: corpus folder; default ``data/corpora/emoji``.
        force: rebuild the records even if a report exists (cached images are still reused).
        limit: keep only this many base emoji (with all their variants), evenly spread over
            Unicode's order; for fast tests.
    """
    out_dir = Path(out_dir) if out_dir is not None else corpus_dir(CORPUS)
    report_path = out_dir / "report.json"
    built = [report_path, out_dir / "images", *(out_dir / f"{s}.jsonl" for s in SPLITS)]
    if not force and all(p.exists() for p in built):
        saved = CorpusReport.load(report_path)
        if saved.extra.get("limit") == limit:
            return saved

    started = time.perf_counter()
    fetch()
    entries = emoji_entries()
    bases = list(dict.fromkeys(e.base for e in entries))
    chosen = set(_spread(bases, limit))
    entries = [e for e in entries if e.base in chosen]

    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(e.emoji, str(image_dir / f"{e.codepoints}.png")) for e in entries
            if not (image_dir / f"{e.codepoints}.png").exists()]
    render_started = time.perf_counter()
    results = _render_all(jobs, _RENDER_PROCESSES)
    render_seconds = time.perf_counter() - render_started

    report = CorpusReport(CORPUS)
    records = []
    for e in entries:
        reason = results.get(e.emoji)
        if reason:
            report.skip(reason, f"{e.codepoints} {e.name}")
            continue
        group = codepoints(e.base)
        records.append({
            "id": f"emoji:{e.codepoints}", "image": f"images/{e.codepoints}.png", "text": e.name,
            "captions": list(e.captions), "group": group, "split": split_of(group), "source": CORPUS,
            "emoji": e.emoji, "category": e.category, "subcategory": e.subcategory,
        })
    report.pairs = write_splits(records, out_dir)

    bases_per_split = {s: len({r["group"] for r in records if r["split"] == s}) for s in SPLITS}
    images_per_base: dict[str, int] = {}
    for r in records:
        images_per_base[r["group"]] = images_per_base.get(r["group"], 0) + 1
    categories: dict[str, int] = {}
    for r in records:
        categories[r["category"] or "unknown"] = categories.get(r["category"] or "unknown", 0) + 1
    report.extra = {
        "candidate_base_emoji": len(chosen),  # before skipping those the font lacks
        "base_emoji": sum(bases_per_split.values()),
        "base_emoji_per_split": bases_per_split,
        "images_with_variants": len(records),
        "bases_with_variants": sum(1 for n in images_per_base.values() if n > 1),
        "categories": categories,
        "rendered": sum(1 for reason in results.values() if reason is None),
        "cached": len(entries) - len(jobs),
        "render_seconds": round(render_seconds, 2),
        "build_seconds": round(time.perf_counter() - started, 2),
        "limit": limit,
        "sources": _source_versions(),
    }
    report.save(report_path)
    return report


def _source_versions() -> dict[str, str]:
    versions = {"emoji (PyPI)": emoji_package.__version__}
    for key in ("emoji-font", "cldr", "emoji-test"):
        marker = raw_dir("deb") / DEB_SOURCES[key].package / ".fetched"
        if marker.exists():
            versions[key] = marker.read_text().strip()
    return versions
