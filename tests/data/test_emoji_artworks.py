"""The emoji-artworks corpus on a tiny hand-made Iconify package and hand-written emoji names (no
network), and its name matching on the real package (``data``: needs `make data-large`)."""

import sys
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from iconify_fixtures import BROKEN, CIRCLE, RED_CIRCLE, read_records, write_set

from mmssl.data import emoji_artworks
from mmssl.data.emoji import EmojiEntry, codepoints
from mmssl.data.emoji_artworks import EmojiArtworksConfig, build_emoji_artworks, name_index, squash
from mmssl.data.splits import SPLITS, UNSEEN_SPLIT, split_of


def _entry(seq: str, name: str, base: str | None = None, *keywords: str) -> EmojiEntry:
    return EmojiEntry(emoji=seq, name=name, captions=(name, *keywords), base=base or seq.replace("\ufe0f", ""),
                      category="Smileys & Emotion", subcategory="fixture")


ENTRIES = [
    _entry("\U0001f600", "grinning face", None, "face", "grin"),
    _entry("\u2764\ufe0f", "red heart", None, "heart"),
    _entry("\U0001f44d", "thumbs up", None, "+1"),
    _entry("\U0001f44d\U0001f3fd", "thumbs up: medium skin tone", "\U0001f44d"),
    _entry("\U0001f1ec\U0001f1ea", "flag: Georgia"),
    _entry("\U0001f376", "sake"),
    _entry("\U0001f436", "dog face"),
]
GRIN, HEART, THUMB, FLAG, SAKE, DOG = "1f600", "2764", "1f44d", "1f1ec-1f1ea", "1f376", "1f436"


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    package = tmp_path_factory.mktemp("iconify") / "package"
    write_set(package, "openmoji", {"grinning": RED_CIRCLE, "red-heart": RED_CIRCLE, "thumbs-up-tone": RED_CIRCLE,
                                    "extra-unicorn-thing": RED_CIRCLE}, "CC-BY-SA-4.0", palette=True,
              chars={"1f600": "grinning", "2764-fe0f": "red-heart", "1f44d-1f3fd": "thumbs-up-tone"})
    write_set(package, "fxemoji", {"sakebottleandcup": CIRCLE, "grinningface": CIRCLE, "aok": CIRCLE}, "Apache-2.0")
    write_set(package, "fluent-emoji", {"thumbs-up": CIRCLE, "thumbs-up-medium": CIRCLE, "dog-face": CIRCLE})
    write_set(package, "emojione", {"flag-for-georgia": CIRCLE, "grinning-face": CIRCLE}, "CC-BY-4.0")
    write_set(package, "streamline-emojis", {"grinning-face-2": CIRCLE, "dog-face": CIRCLE}, "CC-BY-4.0")
    write_set(package, "noto-v1", {"grinning-face": CIRCLE, "dog-face": BROKEN}, "Apache-2.0")
    write_set(package, "emojione-v1", {"grinning-face": CIRCLE}, "Proprietary")
    write_set(package, "noto", {"grinning-face": CIRCLE}, "Apache-2.0")  # the emoji corpus's own artwork
    write_set(package, "twemoji", {"grinning-face": CIRCLE}, "CC-BY-4.0")  # reserved
    return package


@pytest.fixture(scope="module")
def built(package, tmp_path_factory):
    out = tmp_path_factory.mktemp("artworks")
    report = build_emoji_artworks(package, out, EmojiArtworksConfig(processes=1), ENTRIES)
    return out, report, read_records(out)


def test_squash_and_the_name_index_cover_every_spelling():
    assert squash("Thumbs up: medium skin tone") == "thumbsupmediumskintone"
    index = name_index(ENTRIES)
    assert index["grinningface"].name == "grinning face"  # CLDR
    assert index["sakebottleandcup"].name == "sake"  # Unicode's character name
    assert index["thumbsup"].emoji == "\U0001f44d"


def test_icons_are_matched_by_code_points_or_name_and_named_by_cldr(built):
    _, report, records = built
    got = {(r["artwork"], r["id"].rsplit(":", 1)[1]): (r["group"], r["text"]) for r in records}
    assert got == {
        ("openmoji", "grinning"): (GRIN, "grinning face"),  # through the chars table
        ("openmoji", "red-heart"): (HEART, "red heart"),  # VS16 in chars, none in the group
        ("fxemoji", "sakebottleandcup"): (SAKE, "sake"),
        ("fxemoji", "grinningface"): (GRIN, "grinning face"),
        ("fluent-emoji", "thumbs-up"): (THUMB, "thumbs up"),
        ("fluent-emoji", "dog-face"): (DOG, "dog face"),
        ("emojione", "flag-for-georgia"): (FLAG, "flag: Georgia"),
        ("emojione", "grinning-face"): (GRIN, "grinning face"),
        ("streamline-emojis", "grinning-face-2"): (GRIN, "grinning face"),  # a second drawing
        ("streamline-emojis", "dog-face"): (DOG, "dog face"),
        ("noto-v1", "grinning-face"): (GRIN, "grinning face"),
    }
    for r in records:
        assert r["captions"][0] == r["text"] and r["source"] == "emoji-artworks"
        assert r["group"] == codepoints(next(e.base for e in ENTRIES if e.emoji == r["emoji"]))
    assert report.total == 11


def test_bad_artworks_and_icons_are_skipped_by_reason(built):
    _, report, _ = built
    assert report.skipped["set: reserved source (deny list)"] == 1  # twemoji
    assert report.skipped["set: same artwork as the emoji corpus (Noto Color Emoji)"] == 1
    assert report.skipped["set: unknown licence (Proprietary)"] == 1
    assert report.skipped["no emoji matches this name"] == 2
    assert sorted(report.examples["no emoji matches this name"]) == ["fxemoji:aok", "openmoji:extra-unicorn-thing"]
    assert report.skipped["skin-tone variant (skin_tones=False)"] == 2
    assert report.skipped["svg parse error"] == 1 and report.examples["svg parse error"] == ["noto-v1:dog-face"]
    assert "twemoji" not in report.extra["artworks"]


def test_splits_follow_the_base_emoji_and_hold_out_whole_artworks(built):
    out, report, records = built
    splits = defaultdict(set)
    for r in records:
        assert r["concept_split"] == split_of(r["group"])  # the emoji corpus's split of that emoji
        assert (r["split"] == UNSEEN_SPLIT) == (r["artwork"] == "streamline-emojis")
        if r["split"] != UNSEEN_SPLIT:
            splits[r["group"]].add(r["split"])
    assert all(len(s) == 1 for s in splits.values()) and len(splits[GRIN]) == 1
    assert report.pairs[UNSEEN_SPLIT] == 2 and report.extra["unseen_artworks"] == ["streamline-emojis"]
    assert sum(report.pairs[s] for s in SPLITS) == 9


def test_skin_tones_can_be_kept(package, tmp_path):
    report = build_emoji_artworks(package, tmp_path, EmojiArtworksConfig(skin_tones=True, processes=1), ENTRIES)
    records = {r["id"]: r for r in read_records(tmp_path)}
    assert report.total == 13 and "skin-tone variant (skin_tones=False)" not in report.skipped
    assert records["emoji-artworks:fluent-emoji:thumbs-up-medium"]["emoji"] == "\U0001f44d\U0001f3fd"
    assert records["emoji-artworks:fluent-emoji:thumbs-up-medium"]["group"] == THUMB
    assert records["emoji-artworks:openmoji:thumbs-up-tone"]["text"] == "thumbs up: medium skin tone"


@pytest.mark.data
def test_real_artworks_match_most_of_their_icons():
    from mmssl.data import emoji as noto
    from mmssl.data import iconify
    from mmssl.data.report import CorpusReport

    emoji_artworks.fetch()
    entries = noto.emoji_entries()
    by_sequence = {e.emoji.replace(noto.VS16, ""): e for e in entries}
    by_name = name_index(entries)
    sets = iconify.list_sets(iconify.package_dir())
    share = {}
    for prefix in emoji_artworks.ARTWORKS:
        data = iconify.read_icon_set(sets[prefix])
        names = [n for n, _ in iconify.usable_icons(data, CorpusReport("t"))]
        share[prefix] = len(emoji_artworks.match_icons(data, names, by_sequence, by_name)) / len(names)
    assert min(share.values()) > 0.6 and sorted(share.values())[1] > 0.85, share  # fxemoji's names are the hardest
