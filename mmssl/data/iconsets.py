"""The icon-sets corpus: the Iconify icon sets on npm, many artworks of one concept, captioned by name.

Source: every set of the pinned ``@iconify/json`` package (:mod:`mmssl.data.iconify`). A set is
kept when

* it is not reserved (deny list, :mod:`mmssl.data.reserved`), not an emoji artwork (those are the
  ``emoji-artworks`` corpus, named by CLDR) and not game-icons (its own corpus);
* its licence is accepted (:mod:`mmssl.data.licences`; unknown -> skipped by reason);
* its names carry meaning: at least ``min_meaningful_share`` of its icons have an English word in
  their cleaned name (flags named by country code, logo and crypto-ticker sets fall below).

Names: ``"shopping-cart-outline"`` -> caption ``"shopping cart"``. Style suffixes (and the style
prefixes of Google's Material sets, ``"baseline-…"``) are stripped, since variants share the
concept; a suffix that is also an ordinary word ("light", "bold", "line", "round", a digit) only
when the set has the same stem in another style ("home-light" beside "home" or "home-bold", while
"traffic-light" stays). Icons whose name has no letters, or no English word, are skipped by reason.

Splits are by **concept** across every set: ``group`` is the caption without trailing numbers
("battery 100" -> "battery"), written like clipart's title keys, and ``split_of(group)`` is the same
function every corpus uses, so "shopping cart" of one set never trains while another's tests.
The **unseen-style** split holds whole sets (:data:`UNSEEN_SETS`): all their icons go to
``unseen``, whatever their concept, and no image of them is in train or valid. The concept splits
of the other sets stay as they are, so ``unseen`` measures style generalisation; each record also
carries ``concept_split`` (its concept's split), so an evaluation can keep only the unseen icons
whose concept is held out too.

Each set is capped at ``max_icons_per_set`` icons (default 400, sized for rendering on 2 cores;
README has the measured counts and times), a deterministic sample that takes one icon of every
concept before a second style of any, and concepts that more sets draw first (many artworks of one
concept). A smaller cap's sample is a subset of a larger one's, so cached images stay valid when
the cap changes. Icons render round-robin over the sets (every set's first icon, then every set's
second …), so an interrupted build has already cached a complete corpus at a smaller cap. Images
are cached under ``images/<prefix>/<name>.png``.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mmssl.data.clipart import fetch as fetch_english_words
from mmssl.data.clipart import is_english_word, load_english_words
from mmssl.data.corpus import count_by_split, finish_build, saved_report
from mmssl.data.emoji_artworks import ALL_EMOJI_SETS
from mmssl.data.iconify import (
    UNREADABLE_SET,
    icon_image,
    list_sets,
    open_icon_set,
    package_dir,
    package_version,
    render_icons,
    set_info,
    set_summary,
    usable_icons,
)
from mmssl.data.iconify import fetch as fetch_iconify
from mmssl.data.licences import licence_problem
from mmssl.data.paths import corpus_dir
from mmssl.data.report import CorpusReport
from mmssl.data.splits import ALL_SPLITS, UNSEEN_SPLIT, split_of

CORPUS = "iconsets"
# Whole sets held out as unseen styles: a line set, a pixel-art set, a multicolour set and a
# hand-drawn set (all MIT or CC-BY-4.0).
UNSEEN_SETS = ("iconoir", "pixelarticons", "fluent-color", "streamline-freehand")
# Emoji artworks are named by CLDR in the emoji-artworks corpus; game-icons is its own corpus.
OTHER_CORPUS_SETS = {"game-icons": "game-icons"}
EMOJI_CATEGORY = "Emoji"

# Always a style, never part of what the icon shows.
_STYLE_SUFFIXES = frozenset({"outline", "outlined", "filled", "rounded", "duotone", "twotone", "solid", "alt",
                             "regular", "broken", "bulk", "linear", "stroke"})
# Styles that are also ordinary words ("traffic-light", "text-bold"), sizes and variant digits:
# stripped only when the set has the stem bare or in another style.
_WORD_LIKE_SUFFIXES = frozenset({"light", "bold", "line", "fill", "thin", "sharp", "round", "o", "color", "tone",
                                 "mini", "micro", "small", "sm", "10", "12", "16", "20", "24", "28", "32", "48",
                                 *"0123456789"})
_STYLE_PREFIXES = frozenset({"baseline", "outline", "twotone", "round", "sharp"})  # Google's ``ic`` set
# Words that say what kind of picture it is, not what it shows: no meaning of their own here.
GENERIC_WORDS = frozenset({"icon", "icons", "logo", "logos", "symbol", "glyph", "brand", "wordmark",
                           "original", "plain", "app", "badge", "emblem", "sign", "shape", "style"})
_LETTER = re.compile(r"[^\W\d_]")
_TRAILING_NUMBERS = re.compile(r"(?:(?<=[^\W\d_])\d+|(?: \d+)+)$")  # "battery 100", "lock2"


@dataclass(frozen=True)
class IconSetsConfig:
    """What the builder keeps.

    Args:
        max_icons_per_set: cap per set (None: every icon); a deterministic, concept-first sample.
        min_meaningful_share: a set is kept when at least this share of its icons' names hold an
            English word.
        unseen_sets: prefixes of the sets held out whole as the ``unseen`` split.
        processes: render workers.
    """

    max_icons_per_set: int | None = 400
    min_meaningful_share: float = 0.6
    unseen_sets: tuple[str, ...] = UNSEEN_SETS
    processes: int = 2


# ---------------------------------------------------------------------------------------------
# Names


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[-_\s]+", name.casefold()) if t]


def _is_style(token: str) -> bool:
    return token in _STYLE_SUFFIXES or token in _WORD_LIKE_SUFFIXES


def style_stems(names: frozenset[str] | set[str]) -> dict[str, set[str]]:
    """Stem -> the style-suffix chains the set has for it: ``{"home": {"", "bold", "light-24"}}``."""
    stems: dict[str, set[str]] = {}
    for name in names:
        tokens = _tokens(name)
        for k in range(len(tokens), 0, -1):
            stems.setdefault("-".join(tokens[:k]), set()).add("-".join(tokens[k:]))
            if not _is_style(tokens[k - 1]):
                break
    return stems


def _strips_suffix(tokens: list[str], stems: dict[str, set[str]]) -> bool:
    last, stem = tokens[-1], "-".join(tokens[:-1])
    if last in _STYLE_SUFFIXES:
        return True
    if last not in _WORD_LIKE_SUFFIXES:
        return False
    return bool(stems.get(stem, set()) - {last} - {c for c in stems.get(stem, set()) if c.startswith(last + "-")})


def _strips_prefix(tokens: list[str], names: frozenset[str]) -> bool:
    first, rest = tokens[0], "-".join(tokens[1:])
    return first in _STYLE_PREFIXES and (rest in names or any(f"{p}-{rest}" in names for p in _STYLE_PREFIXES - {first}))


def clean_name(name: str, names_in_set: frozenset[str] = frozenset(), stems: dict[str, set[str]] | None = None) -> str:
    """``"shopping-cart-outline"`` -> ``"shopping cart"``: separators to spaces, style suffixes and
    prefixes off (see the module docstring); never strips a name to nothing.

    ``stems`` is :func:`style_stems` of ``names_in_set`` (pass it when cleaning a whole set).
    """
    stems = style_stems(names_in_set) if stems is None else stems
    tokens = _tokens(name)
    while len(tokens) > 1 and _strips_suffix(tokens, stems):
        tokens = tokens[:-1]
    while len(tokens) > 1 and _strips_prefix(tokens, names_in_set):
        tokens = tokens[1:]
    return " ".join(tokens)


def concept_of(caption: str) -> str:
    """The split group of a caption: lower case, trailing numbers off ("battery 100", "lock2" ->
    "battery", "lock")."""
    key = " ".join(re.sub(r"[\W_]+", " ", caption.casefold()).split())
    return _TRAILING_NUMBERS.sub("", key) or key


def name_problem(caption: str, english: frozenset[str]) -> str | None:
    """Why a cleaned name cannot caption an image, or None."""
    if not _LETTER.search(caption):
        return "name has no letters"
    words = [w for w in re.findall(r"[^\W\d_]+", caption.casefold()) if len(w) > 2 and w not in GENERIC_WORDS]
    if not any(is_english_word(w, english) for w in words):
        return "no English word in name"
    return None


# ---------------------------------------------------------------------------------------------
# Sets


def set_problem(prefix: str, info: dict) -> str | None:
    """Why a whole set is left out before its icons are read (a ``"set: …"`` reason), or None."""
    if prefix in OTHER_CORPUS_SETS:
        return f"set: its own corpus ({OTHER_CORPUS_SETS[prefix]})"
    if info.get("category") == EMOJI_CATEGORY or prefix in ALL_EMOJI_SETS:
        return "set: emoji artwork (emoji-artworks corpus)"
    problem = licence_problem(info)
    return f"set: {problem}" if problem else None


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def concept_first_sample(items: list[tuple[str, str]], limit: int | None, salt: str,
                         sets_per_concept: Mapping[str, int] | None = None) -> list[tuple[str, str]]:
    """Up to ``limit`` ``(name, concept)`` items: one of every concept before a second of any; among
    concepts, those drawn by more sets first (``sets_per_concept``), so the corpus holds many
    artworks of one concept; ties in hash order. Deterministic: the same items give the same sample."""
    if limit is None or limit >= len(items):
        return items
    shared = sets_per_concept or {}
    rank: dict[str, int] = {}
    keyed = []
    for name, concept in sorted(items, key=lambda item: _hash(f"{salt}:{item[0]}")):
        keyed.append((rank.get(concept, 0), -shared.get(concept, 0), _hash(f"{salt}:{name}"), name, concept))
        rank[concept] = rank.get(concept, 0) + 1
    return [(name, concept) for *_, name, concept in sorted(keyed)[:max(limit, 0)]]


def round_robin(samples: list[list]) -> list:
    """The first item of every list, then the second of every list, …: rendered in this order, an
    interrupted build leaves the first k icons of every set cached, a complete corpus at cap k."""
    longest = max((len(s) for s in samples), default=0)
    return [sample[rank] for rank in range(longest) for sample in samples if rank < len(sample)]


@dataclass(frozen=True)
class _Icon:
    prefix: str
    name: str
    caption: str
    concept: str
    svg: str
    category: str | None


def _categories(data: dict) -> dict[str, str]:
    """Icon name -> its Iconify category (the first that lists it)."""
    out: dict[str, str] = {}
    for category, names in (data.get("categories") or {}).items():
        for name in names if isinstance(names, list) else []:
            out.setdefault(name, category)
    return out


def read_set(prefix: str, data: dict, report: CorpusReport, english: frozenset[str]) -> list[_Icon]:
    """The captionable icons of one set; the others go to ``report`` by reason."""
    captions = set_captions(data)

    def skip_name(name: str) -> str | None:
        return name_problem(captions[name], english)

    categories = _categories(data)
    return [_Icon(prefix, name, captions[name], concept_of(captions[name]), svg, categories.get(name))
            for name, svg in usable_icons(data, report, where=f"{prefix}:", skip_name=skip_name)]


def set_captions(data: dict) -> dict[str, str]:
    """Icon name -> cleaned caption, for every icon of a set."""
    names = frozenset(data.get("icons", {}))
    stems = style_stems(names)
    return {name: clean_name(name, names, stems) for name in names}


def meaningful_share(captions: dict[str, str], english: frozenset[str]) -> float:
    """Share of a set's icons whose cleaned name holds an English word."""
    if not captions:
        return 0.0
    return sum(name_problem(c, english) is None for c in captions.values()) / len(captions)


# ---------------------------------------------------------------------------------------------
# Build


def fetch() -> None:
    """Fetch ``@iconify/json`` (104 MB) and the English word list; idempotent."""
    fetch_iconify()
    fetch_english_words()


def build(out_dir: Path | None = None, *, force: bool = False, limit: int | None = None) -> CorpusReport:
    """Build the icon-sets corpus (fetching the package if needed) and return its report.

    Args:
        out_dir: corpus folder; default ``data/corpora/iconsets``.
        force: rebuild the records even if a report exists (cached images are still reused).
        limit: icons per set instead of the default cap (a quick look: ``limit=5``).
    """
    out_dir = Path(out_dir) if out_dir is not None else corpus_dir(CORPUS)
    if not force and (saved := saved_report(out_dir, limit)):
        return saved
    fetch()
    config = IconSetsConfig() if limit is None else IconSetsConfig(max_icons_per_set=limit)
    return build_iconsets(package_dir(), out_dir, config, load_english_words(), limit=limit)


def build_iconsets(package: Path, out_dir: Path, config: IconSetsConfig, english: frozenset[str],
                   limit: int | None = None) -> CorpusReport:
    """Build from an unpacked ``@iconify/json``-shaped folder (``json/<prefix>.json``); never fatal
    on a bad set or icon: each is skipped and counted by reason.

    ``limit`` is only recorded (a rebuild with another ``limit`` does not reuse this one).
    """
    started = time.perf_counter()
    report = CorpusReport(CORPUS)
    sets, usable = {}, {}
    for prefix, path in list_sets(package, report).items():
        sets[prefix], usable[prefix] = _read_kept_set(prefix, path, config, report, english)
    sets_per_concept = Counter(c for icons in usable.values() for c in {i.concept for i in icons})
    icons = round_robin([_sample_set(sets[p], icons, config, report, sets_per_concept) for p, icons in usable.items()])

    rendered, render_facts = render_icons([(i.prefix, i.name, i.svg) for i in icons], out_dir, report,
                                          desc="rendering icon sets", processes=config.processes)
    unseen = set(config.unseen_sets)
    records = [_record(i, i.prefix in unseen, sets[i.prefix]) for i, ok in zip(icons, rendered) if ok]
    return finish_build(records, report, out_dir, started, splits=ALL_SPLITS,
        sets=sets,
        sets_kept=sorted(p for p, s in sets.items() if s["status"] in ("kept", UNSEEN_SPLIT)),
        unseen_sets=sorted(p for p, s in sets.items() if s["status"] == UNSEEN_SPLIT),
        pairs_per_set=count_by_split(records, "icon_set"),
        concepts=len({r["group"] for r in records}),
        config={"max_icons_per_set": config.max_icons_per_set,
                "min_meaningful_share": config.min_meaningful_share,
                "unseen_sets": list(config.unseen_sets)},
        **render_facts,
        limit=limit,
        sources={"iconify-json": package_version(package)})


def _read_kept_set(prefix: str, path: Path, config: IconSetsConfig, report: CorpusReport,
                   english: frozenset[str]) -> tuple[dict, list[_Icon]]:
    """(the set's entry for the report, its captionable icons); an unusable set gives no icons."""
    if (data := open_icon_set(prefix, path, report)) is None:
        return {"status": UNREADABLE_SET}, []
    info, entry = set_info(data), set_summary(prefix, data)
    problem = set_problem(prefix, info)
    if problem is None:
        entry["meaningful_share"] = round(meaningful_share(set_captions(data), english), 3)
        if entry["meaningful_share"] < config.min_meaningful_share:
            problem = "set: names carry little meaning"
    if problem:
        report.skip(problem, prefix)
        return {**entry, "status": problem}, []
    icons = read_set(prefix, data, report, english)
    status = UNSEEN_SPLIT if prefix in config.unseen_sets else "kept"
    return {**entry, "status": status, "usable": len(icons)}, icons


def _sample_set(entry: dict, icons: list[_Icon], config: IconSetsConfig, report: CorpusReport,
                sets_per_concept: Mapping[str, int]) -> list[_Icon]:
    """The set's capped sample (recorded in its report ``entry``)."""
    if not icons:
        return []
    by_name = {i.name: i for i in icons}
    sample = concept_first_sample([(i.name, i.concept) for i in icons], config.max_icons_per_set, icons[0].prefix,
                                  sets_per_concept)
    report.extra["not_selected_by_cap"] = report.extra.get("not_selected_by_cap", 0) + len(icons) - len(sample)
    entry["selected"] = len(sample)
    return [by_name[n] for n, _ in sample]


def _record(icon: _Icon, unseen: bool, set_entry: dict) -> dict:
    concept_split = split_of(icon.concept)
    return {
        "id": f"{CORPUS}:{icon.prefix}:{icon.name}", "image": icon_image(icon.prefix, icon.name),
        "text": icon.caption, "captions": [icon.caption], "group": icon.concept,
        "split": UNSEEN_SPLIT if unseen else concept_split, "concept_split": concept_split,
        "source": CORPUS, "icon_set": icon.prefix, "licence": set_entry["licence"],
        "palette": set_entry["palette"], "category": icon.category,
    }

