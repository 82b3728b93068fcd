"""The emoji-artworks corpus: the same emoji drawn by other artists, named like the Noto emoji corpus.

Source: the emoji sets of the pinned ``@iconify/json`` package (:data:`ARTWORKS`). Each icon is
matched to one emoji **by code point sequence** and then takes that emoji's CLDR name, keywords and
category from :func:`mmssl.data.emoji.emoji_entries`, exactly as the ``emoji`` corpus does:

* sets with a ``chars`` table (OpenMoji, Fluent flat and high-contrast) map code points to icon
  names directly;
* the others name icons after the emoji, in one of three spellings, matched with separators and
  case ignored: the CLDR name ("thumbs-down-medium-dark-skin-tone"; EmojiOne writes flags
  "flag-for-georgia", Fluent 3D drops "skin-tone": "boy-light"), the ``emoji`` package's names and
  aliases, or Unicode's character name run together (Firefox OS: "sakebottleandcup"). A name that
  matches no emoji is skipped by reason; streamline's "…-2" second drawings match their emoji too.

``group`` is the base emoji's code points, the same key as the emoji corpus, so 😀 of every
artwork and of Noto share one split. The unseen-style split holds whole artworks
(:data:`UNSEEN_ARTWORKS`), as in :mod:`mmssl.data.iconsets`.

Not here: Iconify's ``noto`` set (the same artwork as the Noto Color Emoji font of the emoji
corpus), Twemoji (reserved, never unpacked), and npm ``@svgmoji/blob`` 3.2.0, which ships no
drawings (its 15 files are code and name tables; the SVGs come from a CDN at run time).
Skin-tone variants are left out by default (``skin_tones=False``): they repeat their base emoji's
concept in one artwork and would triple the render time.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import emoji as emoji_package

from mmssl.data import emoji as noto
from mmssl.data.corpus import count_by_split, finish_build, saved_report, spread_sample
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

CORPUS = "emoji-artworks"
ARTWORKS = ("emojione", "emojione-monotone", "emojione-v1", "fluent-emoji", "fluent-emoji-flat",
            "fluent-emoji-high-contrast", "fxemoji", "noto-v1", "openmoji", "streamline-emojis")
# Held out whole: Streamline's hand-drawn emoji, a style no other artwork shares.
UNSEEN_ARTWORKS = ("streamline-emojis",)
SAME_AS_EMOJI_CORPUS = ("noto",)
ALL_EMOJI_SETS = frozenset(ARTWORKS + SAME_AS_EMOJI_CORPUS + ("twemoji",))  # twemoji: reserved, excluded here too

_TONES = ("medium-light", "medium-dark", "light", "medium", "dark")
_FLUENT_TONE = re.compile(rf"^(.*)-({'|'.join(_TONES)})$")
_SECOND_DRAWING = re.compile(r"^(.*)-\d$")


@dataclass(frozen=True)
class EmojiArtworksConfig:
    """What the builder keeps.

    Args:
        skin_tones: keep skin-tone variants too (default: base emoji only).
        max_icons_per_artwork: cap per artwork (None: every matched emoji), evenly spread.
        unseen_artworks: artworks held out whole as the ``unseen`` split.
        processes: render workers.
    """

    skin_tones: bool = False
    max_icons_per_artwork: int | None = None
    unseen_artworks: tuple[str, ...] = UNSEEN_ARTWORKS
    processes: int = 2


def squash(text: str) -> str:
    """Letters and digits only, case-folded: ``"Thumbs down: dark skin tone"`` -> ``"thumbsdowndarkskintone"``."""
    return re.sub(r"[\W_]+", "", text.casefold())


def name_index(entries: list[noto.EmojiEntry]) -> dict[str, noto.EmojiEntry]:
    """Squashed name -> emoji, for every spelling an artwork uses; CLDR names win over the ``emoji``
    package's names and aliases, which win over Unicode character names."""
    index: dict[str, noto.EmojiEntry] = {}
    for entry in entries:
        index.setdefault(squash(entry.name), entry)
    for entry in entries:
        data = emoji_package.EMOJI_DATA.get(entry.emoji, {})
        for spelling in [data.get("en", ""), *data.get("alias", [])]:
            if spelling:
                index.setdefault(squash(spelling), entry)
    for entry in entries:
        stripped = entry.emoji.replace(noto.VS16, "")
        if len(stripped) == 1:
            index.setdefault(squash(unicodedata.name(stripped, "")), entry)
    index.pop("", None)
    return index


def _spellings(name: str) -> list[str]:
    """The squashed keys an icon name may match, most literal first."""
    keys = [name]
    if name.startswith("flag-for-"):
        keys.append("flag-" + name.removeprefix("flag-for-"))
    if (m := _FLUENT_TONE.match(name)) and not name.endswith("skin-tone"):
        keys.append(f"{m.group(1)}-{m.group(2)}-skin-tone")
    if (m := _SECOND_DRAWING.match(name)):
        keys.append(m.group(1))
    return [squash(k) for k in keys]


def match_icons(data: dict, names: list[str], by_sequence: dict[str, noto.EmojiEntry],
                by_name: dict[str, noto.EmojiEntry]) -> dict[str, noto.EmojiEntry]:
    """Icon name -> its emoji, through the set's ``chars`` table when it has one, else by name."""
    matched = {}
    from_chars = {}
    for hex_codes, icon_name in (data.get("chars") or {}).items():
        try:
            seq = "".join(chr(int(h, 16)) for h in hex_codes.split("-")).replace(noto.VS16, "")
        except ValueError:
            continue
        if seq in by_sequence:
            from_chars.setdefault(icon_name, by_sequence[seq])
    for name in names:
        entry = from_chars.get(name)
        if entry is None and not from_chars:  # a set with chars names what it has; no guessing
            entry = next((by_name[k] for k in _spellings(name) if k in by_name), None)
        if entry is not None:
            matched[name] = entry
    return matched


# ---------------------------------------------------------------------------------------------
# Build


def fetch() -> None:
    """Fetch ``@iconify/json`` (104 MB) and the emoji name sources (CLDR, emoji-test.txt); idempotent."""
    fetch_iconify()
    noto.fetch()


def build(out_dir: Path | None = None, *, force: bool = False, limit: int | None = None) -> CorpusReport:
    """Build the emoji-artworks corpus (fetching the sources if needed) and return its report.

    Args:
        out_dir: corpus folder; default ``data/corpora/emoji-artworks``.
        force: rebuild the records even if a report exists (cached images are still reused).
        limit: emoji per artwork (a quick look), evenly spread over Unicode's order.
    """
    out_dir = Path(out_dir) if out_dir is not None else corpus_dir(CORPUS)
    if not force and (saved := saved_report(out_dir, limit)):
        return saved
    fetch()
    config = EmojiArtworksConfig(max_icons_per_artwork=limit)
    return build_emoji_artworks(package_dir(), out_dir, config, noto.emoji_entries(), limit=limit)


def build_emoji_artworks(package: Path, out_dir: Path, config: EmojiArtworksConfig,
                         entries: list[noto.EmojiEntry], limit: int | None = None) -> CorpusReport:
    """Build from an unpacked ``@iconify/json``-shaped folder; a bad set or icon is skipped and
    counted by reason, never fatal. ``entries``: the emoji and their names (see :mod:`mmssl.data.emoji`)."""
    started = time.perf_counter()
    report = CorpusReport(CORPUS)
    by_sequence = {e.emoji.replace(noto.VS16, ""): e for e in entries}
    by_name = name_index(entries)
    order = {e.emoji: i for i, e in enumerate(entries)}
    artworks, icons = {}, []  # icons: (artwork, icon name, svg, entry)
    sets = list_sets(package, report)
    for prefix in sorted(ALL_EMOJI_SETS - set(ARTWORKS)):
        if prefix in sets:
            report.skip("set: same artwork as the emoji corpus (Noto Color Emoji)", prefix)
    for prefix in ARTWORKS:
        if prefix not in sets:
            continue
        entry, kept = _read_artwork(prefix, sets[prefix], config, report, by_sequence, by_name, order)
        artworks[prefix] = entry
        icons += kept

    rendered, render_facts = render_icons([(a, n, svg) for a, n, svg, _ in icons], out_dir, report,
                                          desc="rendering emoji artworks", processes=config.processes)
    unseen = set(config.unseen_artworks)
    records = [_record(a, n, e, a in unseen, artworks[a]) for (a, n, _, e), ok in zip(icons, rendered) if ok]
    return finish_build(records, report, out_dir, started, splits=ALL_SPLITS,
        artworks=artworks,
        unseen_artworks=sorted(a for a, s in artworks.items() if s["status"] == UNSEEN_SPLIT),
        pairs_per_artwork=count_by_split(records, "artwork"),
        base_emoji=len({r["group"] for r in records}),
        config={"skin_tones": config.skin_tones, "max_icons_per_artwork": config.max_icons_per_artwork,
                "unseen_artworks": list(config.unseen_artworks)},
        **render_facts,
        limit=limit,
        sources={"iconify-json": package_version(package)})


def _read_artwork(prefix, path, config, report, by_sequence, by_name, order):
    """(the artwork's entry for the report, its kept (artwork, name, svg, emoji) icons)."""
    if (data := open_icon_set(prefix, path, report)) is None:
        return {"status": UNREADABLE_SET}, []
    info, entry = set_info(data), set_summary(prefix, data)
    if (problem := licence_problem(info)):
        report.skip(f"set: {problem}", prefix)
        return {**entry, "status": f"set: {problem}"}, []
    drawable = usable_icons(data, report, where=f"{prefix}:")
    matched = match_icons(data, [n for n, _ in drawable], by_sequence, by_name)
    kept = []
    for name, svg in drawable:
        emoji_entry = matched.get(name)
        if emoji_entry is None:
            report.skip("no emoji matches this name", f"{prefix}:{name}")
        elif not config.skin_tones and any(c in noto.SKIN_TONES for c in emoji_entry.emoji):
            report.skip("skin-tone variant (skin_tones=False)", f"{prefix}:{name}")
        else:
            kept.append((prefix, name, svg, emoji_entry))
    kept.sort(key=lambda icon: (order[icon[3].emoji], icon[1]))
    selected = spread_sample(kept, config.max_icons_per_artwork)
    report.extra["not_selected_by_cap"] = report.extra.get("not_selected_by_cap", 0) + len(kept) - len(selected)
    status = UNSEEN_SPLIT if prefix in config.unseen_artworks else "kept"
    return {**entry, "status": status, "matched": len(matched), "selected": len(selected)}, selected


def _record(artwork: str, name: str, entry: noto.EmojiEntry, unseen: bool, artwork_entry: dict) -> dict:
    group = noto.codepoints(entry.base)
    concept_split = split_of(group)
    return {
        "id": f"{CORPUS}:{artwork}:{name}", "image": icon_image(artwork, name), "text": entry.name,
        "captions": list(entry.captions), "group": group,
        "split": UNSEEN_SPLIT if unseen else concept_split, "concept_split": concept_split,
        "source": CORPUS, "artwork": artwork, "emoji": entry.emoji, "licence": artwork_entry["licence"],
        "category": entry.category, "subcategory": entry.subcategory,
    }

