"""The emoji corpus, built from the real Noto Color Emoji font and CLDR names (a 60-emoji sample)."""

import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmssl.data import emoji
from mmssl.data.corpus import load_corpus
from mmssl.data.splits import SPLITS, split_of

LIMIT = 60


@pytest.fixture(scope="module")
def entries():
    emoji.fetch()  # idempotent: a no-op once the three Debian packages are unpacked
    return {e.emoji: e for e in emoji.emoji_entries()}


@pytest.fixture(scope="module")
def built(tmp_path_factory, entries):
    out = tmp_path_factory.mktemp("emoji")
    report = emoji.build(out, limit=LIMIT)
    records = [json.loads(line) for s in SPLITS for line in (out / f"{s}.jsonl").read_text().splitlines()]
    return out, report, records


def test_names_keywords_and_categories_from_cldr_and_unicode(entries):
    grinning = entries["\U0001f600"]
    assert grinning.name == "grinning face"
    assert grinning.captions == ("grinning face", "face", "grin", "grinning")  # CLDR, then alias
    assert (grinning.category, grinning.subcategory) == ("Smileys & Emotion", "face-smiling")
    smiling = entries["\u263a\ufe0f"]  # CLDR writes it without VS16
    assert smiling.name == "smiling face" and "relaxed" in smiling.captions
    thumbs = entries["\U0001f44d\U0001f3fd"]
    assert thumbs.name == "thumbs up: medium skin tone"
    assert {"+1", "thumb", "medium skin tone"} <= set(thumbs.captions)
    assert thumbs.base == "\U0001f44d"
    assert entries["\U0001f1eb\U0001f1f7"].name == "flag: France"
    phoenix = entries["\U0001f426\u200d\U0001f525"]  # Emoji 15.1: newer than CLDR 41 and emoji-test 15.0
    assert phoenix.name == "phoenix" and phoenix.category == "Animals & Nature"
    runner = entries["\U0001f3c3\U0001f3fb\u200d\u27a1\ufe0f"]  # named by the emoji package, CLDR-styled
    assert runner.name == "person running facing right: light skin tone"
    assert runner.base == "\U0001f3c3\u200d\u27a1"


def test_every_variant_maps_to_an_existing_base_emoji(entries):
    stripped = {e.emoji.replace("\ufe0f", "") for e in entries.values()}
    assert all(e.base in stripped for e in entries.values())
    handshake = entries["\U0001faf1\U0001f3fb\u200d\U0001faf2\U0001f3ff"]
    assert handshake.base == "\U0001f91d"  # the two-tone ZWJ form groups with the one-character 🤝
    assert len(entries) >= 3900 and len({e.base for e in entries.values()}) >= 1900


def test_renderer_detects_what_the_font_lacks():
    renderer = emoji.EmojiRenderer()
    image, reason = renderer.render("\U0001f600")
    assert reason is None and image.size == (136, 128)
    assert renderer.render("\U0001fae9") == (None, "no glyph in font (blank)")  # Emoji 16, font 15.1
    assert renderer.render("\U0001f1e8\U0001f1f6") == (None, "unknown flag (font's '?' flag)")  # Sark
    bunny = "\U0001f9d1\U0001f3fb\u200d\U0001f430\u200d\U0001f9d1\U0001f3ff"  # Emoji 17 two-tone pair
    assert renderer.render(bunny) == (None, "not in font (drawn as several glyphs)")


def test_build_sample_records(built):
    out, report, records = built
    assert report.extra["candidate_base_emoji"] == LIMIT
    # the evenly spread sample reaches the Emoji 16+ tail the font lacks (e.g. "lighthouse")
    assert LIMIT - 3 <= report.extra["base_emoji"] == len({r["group"] for r in records}) <= LIMIT
    assert report.total == len(records) == report.extra["images_with_variants"]
    assert set(report.skipped) <= {"no glyph in font (blank)", "not in font (drawn as several glyphs)",
                                   "unknown flag (font's '?' flag)"}
    assert report.extra["bases_with_variants"] >= 5 and report.extra["rendered"] == len(records)
    assert sum(report.extra["base_emoji_per_split"].values()) == report.extra["base_emoji"]
    by_id = {r["id"]: r for r in records}
    grinning = by_id["emoji:1f600"]
    assert grinning["text"] == "grinning face" and grinning["image"] == "images/1f600.png"
    assert grinning["category"] == "Smileys & Emotion" and grinning["emoji"] == "\U0001f600"
    assert all(r["source"] == "emoji" and r["text"] == r["captions"][0] for r in records)


def test_skin_tone_variants_share_one_split(built):
    _, _, records = built
    splits_by_group = defaultdict(set)
    sizes = defaultdict(int)
    for r in records:
        splits_by_group[r["group"]].add(r["split"])
        sizes[r["group"]] += 1
        assert r["split"] == split_of(r["group"])
        assert "1f3fb" not in r["group"] and "fe0f" not in r["group"]
    assert all(len(s) == 1 for s in splits_by_group.values())
    assert max(sizes.values()) >= 6  # some base with its five skin tones


def test_images_are_128_rgb_and_not_blank(built):
    out, _, records = built
    for r in records:
        image = Image.open(out / r["image"])
        assert image.mode == "RGB" and image.size == (128, 128)
        pixels = np.asarray(image, dtype=np.int16)  # (128, 128, 3)
        assert (pixels < 200).any(axis=-1).mean() > 0.05, r["id"]  # > 5% of pixels not near-white
    face = np.asarray(Image.open(out / "images/1f600.png"), dtype=np.int16)
    yellow = (face[..., 0] > 200) & (face[..., 1] > 150) & (face[..., 2] < 100)
    assert yellow.mean() > 0.3  # the grinning face is mostly yellow


def test_second_build_is_a_fast_no_op(built):
    out, report, _ = built
    png = out / "images/1f600.png"
    mtime = png.stat().st_mtime_ns
    started = time.perf_counter()
    again = emoji.build(out, limit=LIMIT)
    assert time.perf_counter() - started < 0.5
    assert again.to_dict() == report.to_dict()
    forced = emoji.build(out, limit=LIMIT, force=True)  # records rebuilt, images reused
    assert forced.extra["rendered"] == 0 and forced.extra["cached"] == report.total
    assert forced.pairs == report.pairs and png.stat().st_mtime_ns == mtime


def test_load_corpus_gives_absolute_existing_image_paths(built):
    out, report, _ = built
    dataset = load_corpus("emoji", "train", root=out)
    assert len(dataset) == report.pairs["train"]
    assert {"id", "image", "text", "captions", "group", "split", "category"} <= set(dataset.column_names)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in dataset["image"])
