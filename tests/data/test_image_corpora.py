"""The clipart, stamps and game-icons corpora, built from their real sources (48-item samples).

Tests marked ``data`` need the `make data` sources (openclipart-svg 25 MB, tuxpaint-stamps-default
160 MB, @iconify-json/game-icons 6 MB): `make test` deselects them (``-m "not data"``), `make
test-data` runs them. The title filter and renderer tests below them need no data.
"""

import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmssl.data import clipart, game_icons, render, stamps
from mmssl.data.clipart import ClipartMeta, clean_title, filter_titles
from mmssl.data.render import RenderJob, render_images, render_svg
from mmssl.data.corpus import load_corpus
from mmssl.data.iconify import icon_svg
from mmssl.data.report import CorpusReport
from mmssl.data.splits import SPLITS, split_of

LIMIT = 48
CORPORA = {"clipart": clipart, "stamps": stamps, "game-icons": game_icons}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """``sample(name)`` -> (name, module, folder, report, records) of a ``LIMIT``-item build, built once."""
    cache = {}

    def get(name):
        if name not in cache:
            module = CORPORA[name]
            module.fetch()  # idempotent: a no-op once `make data` has unpacked the package
            out = tmp_path_factory.mktemp(name)
            report = module.build(out, limit=LIMIT)
            records = [json.loads(line) for s in SPLITS for line in (out / f"{s}.jsonl").read_text().splitlines()]
            cache[name] = (name, module, out, report, records)
        return cache[name]

    return get


@pytest.fixture(params=list(CORPORA))
def built(request, sample):
    return sample(request.param)


# ---------------------------------------------------------------------------------------------
# The contract every image corpus keeps


@pytest.mark.data
def test_records_follow_the_image_schema(built):
    name, module, out, report, records = built
    assert len(records) == report.total
    assert LIMIT - 4 <= report.total <= LIMIT  # a sample of the source, a render may fail
    assert report.extra["limit"] == LIMIT and report.extra["not_selected_by_limit"] > 500
    assert len({r["id"] for r in records}) == len(records)
    for r in records:
        assert {"id", "image", "text", "captions", "group", "split", "source"} <= set(r)
        assert r["source"] == name and r["id"].startswith(f"{name}:")
        assert r["text"] and r["text"] == r["captions"][0] and r["text"] == r["text"].strip()
        assert not Path(r["image"]).is_absolute() and r["image"].startswith("images/")
        if name != "game-icons":  # the npm package has no categories
            assert r["category"] is None or r["category"].isidentifier()


@pytest.mark.data
def test_images_are_128px_rgb_and_not_blank(built):
    name, module, out, report, records = built
    for r in records:
        image = Image.open(out / r["image"])
        assert image.size == (128, 128) and image.mode == "RGB"
        pixels = np.asarray(image, dtype=np.float32)  # (128, 128, 3)
        assert (pixels.min(axis=2) < 240).mean() > 0.005, r["id"]  # something is drawn (a thin map outline: 2%)


@pytest.mark.data
def test_splits_are_by_group_and_leak_free(built):
    name, module, out, report, records = built
    splits_of_group = defaultdict(set)
    for r in records:
        assert r["split"] == split_of(r["group"])
        splits_of_group[r["group"]].add(r["split"])
    assert all(len(s) == 1 for s in splits_of_group.values())
    assert report.pairs == {s: sum(r["split"] == s for r in records) for s in SPLITS}
    assert report.pairs["train"] > report.pairs["test"] > 0


@pytest.mark.data
def test_second_build_is_a_no_op_and_images_are_cached(built):
    name, module, out, report, records = built
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    started = time.perf_counter()
    again = module.build(out, limit=LIMIT)
    assert time.perf_counter() - started < 1.0
    assert again.to_dict() == report.to_dict()
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes

    forced = module.build(out, limit=LIMIT, force=True)  # records rebuilt, every image reused
    assert forced.pairs == report.pairs
    assert forced.extra["cached_images"] == report.total and forced.extra["rendered"] == 0


@pytest.mark.data
def test_load_corpus_gives_absolute_image_paths(built):
    name, module, out, report, records = built
    ds = load_corpus(name, "train", root=out)
    assert len(ds) == report.pairs["train"]
    assert {"id", "image", "text", "captions", "group"} <= set(ds.column_names)
    assert Path(ds[0]["image"]).is_absolute() and Path(ds[0]["image"]).exists()


# ---------------------------------------------------------------------------------------------
# What each source really says


@pytest.mark.data
def test_stamp_descriptions_are_the_english_sentences():
    stamps.fetch()
    root = stamps.stamps_root()
    assert stamps.read_description(root / "vehicles/cycle/bluebike.txt") == ("A blue bicycle.", [])
    sentence, variants = stamps.read_description(root / "seasonal/christmas/bow.txt")
    assert sentence == "A colorful bow." and variants == ["A colourful bow."]  # en_GB spelling as a caption


@pytest.mark.data
def test_stamps_sample_has_real_sentences_and_folders(sample):
    name, module, out, report, records = sample("stamps")
    assert all(r["text"][0].isupper() for r in records)
    assert sum(r["text"].endswith((".", "!", "?")) for r in records) >= 0.9 * len(records)
    assert {r["category"] for r in records} <= {p.name for p in stamps.stamps_root().iterdir()}
    assert report.skipped["no description (mirrored copy of a stamp)"] == 11


@pytest.mark.data
def test_game_icon_names_become_captions():
    game_icons.fetch()
    data = json.loads((game_icons.package_dir() / "icons.json").read_text())
    assert "carnivorous-plant" in data["icons"] and "rolling-suitcase" in data["icons"]
    assert game_icons.caption_of("carnivorous-plant") == "carnivorous plant"
    assert game_icons.group_of("battery-100") == game_icons.group_of("battery-25") == "battery"
    assert game_icons.group_of("3d-glasses") == "3d glasses"

    image = render_svg(icon_svg(data["icons"]["carnivorous-plant"]).encode())
    rgb = np.asarray(Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB"))
    assert (rgb.max(axis=2) - rgb.min(axis=2)).max() == 0  # black on white: no colour at all
    assert 0.1 < (rgb[..., 0] < 128).mean() < 0.9


@pytest.mark.data
def test_game_icons_sample_captions(sample):
    name, module, out, report, records = sample("game-icons")
    assert all(r["text"] == r["id"].split(":", 1)[1].replace("-", " ") for r in records)
    assert report.skipped["non-descriptive name (abstract-NNN)"] == 121
    assert report.skipped["alias of another icon"] == 3


@pytest.mark.data
def test_clipart_metadata_and_real_title_filter():
    clipart.fetch()
    root = clipart.svg_root()
    meta = clipart.read_metadata(root / "people/my_lovely_baby_enrique_m_02.svg", root)
    assert (meta.title, meta.creator, meta.category) == ("My lovely baby", "Enrique Meza C", "people")
    assert {"people", "daughter", "lovely"} <= set(meta.keywords)

    english = clipart.load_english_words()
    assert clipart.is_english_title("Cartoon Cat", english) and clipart.is_english_title("Apple Juice Box", english)
    assert clipart.is_english_title("piggybank", english)  # a compound of two English words
    for foreign in ("Camicia in seta", "Scolapasta e pentola", "gramastar", "premiers secours", "Albero"):
        assert not clipart.is_english_title(foreign, english), foreign


@pytest.mark.data
def test_clipart_sample_has_clean_titles(sample):
    name, module, out, report, records = sample("clipart")
    assert report.extra["drawings"] == 7458
    assert report.skipped["symlink to another drawing"] == 663
    for reason in ("non-English title", "collection or set name", "file-name-like title", "empty title"):
        assert report.skipped[reason] > 50, reason
    assert 2000 < report.extra["kept_titles"] < 3500
    for r in records:
        assert "_" not in r["text"] and "clipart by" not in r["text"].lower()
        assert "hash" not in r["captions"] and "" not in r["captions"]


# ---------------------------------------------------------------------------------------------
# No data needed: the title filter and the renderer's safety nets

ENGLISH = frozenset("cartoon cat apple juice box the red fire truck card house of in a and map flag "
                    "france bee icon lemon theme people stick man".split())


def _meta(title: str, creator: str = "Jane Doe", path: str = "animals/x.svg") -> ClipartMeta:
    return ClipartMeta(path=path, title=title, keywords=(), creator=creator)


def test_clean_title_strips_prefixes_quotes_and_variant_numbers():
    assert clean_title("  Clipart by Nicu Buculei - pear 2 ") == "pear"
    assert clean_title('"Cartoon   Cat"') == "Cartoon Cat"
    assert clean_title("bee1") == "bee"
    assert clean_title("LeafRake") == "Leaf Rake" and clean_title("lightbulb-lit") == "lightbulb lit"
    assert clean_title("Naval Flag 7") == "Naval Flag" and clean_title("1984") == "1984"


@pytest.mark.parametrize("title, creator, reason", [
    ("Cartoon Cat", "Jane Doe", None),
    ("Apple Juice Box", "Jane Doe", None),
    ("", "Jane Doe", "empty title"),
    ("Untitled", "Jane Doe", "untitled"),
    ("drawing 3", "Jane Doe", "untitled"),
    ("2004", "Jane Doe", "no words (digits or punctuation only)"),
    ("jigsaw_red_10", "Jane Doe", "file-name-like title"),
    ("smiley111 face", "Jane Doe", "file-name-like title"),
    ("house.svg", "Jane Doe", "file-name-like title"),
    ("Jane Doe", "Jane Doe", "author name"),
    ("John Roe", "Jane Doe", "author name"),  # another contributor's name
    ("ralf@ark.in-berlin.de", "Jane Doe", "author name"),
    ("Lemon SVG theme", "Jane Doe", "collection or set name"),
    ("Part of the Flat Icon Collection (Wed Aug 25 2004)", "Jane Doe", "collection or set name"),
    ("Camicia in seta", "Jane Doe", "non-English title"),
    ("Casa in campagna", "Jane Doe", "non-English title"),  # "in" is English, "campagna" is not
    ("France - Anjou", "Jane Doe", None),  # a capitalised name beside English words is kept
])
def test_title_filter_reasons(title, creator, reason):
    metas = [_meta(title, creator), _meta("Red Fire Truck", "John Roe")]
    kept, dropped = filter_titles(metas, ENGLISH)
    got = dict((m.title, r) for m, r in dropped).get(title)
    assert got == reason
    assert ("Red Fire Truck" in [t for _, t in kept])


def test_repeated_titles_keep_an_even_spread_of_max_repeats():
    metas = [_meta("card", path=f"recreation/games/card_{i:03d}.svg") for i in range(20)]
    metas += [_meta("House", path="buildings/house.svg"), _meta("house", path="buildings/house2.svg")]
    kept, dropped = filter_titles(metas, ENGLISH, max_repeats=5)
    cards = [m.path for m, t in kept if t == "card"]
    assert cards == [f"recreation/games/card_{i:03d}.svg" for i in (0, 4, 8, 12, 16)]
    assert [r for _, r in dropped] == ["repeated title (more than 5)"] * 15
    assert sorted(t for _, t in kept if t.lower() == "house") == ["House", "house"]  # 2 <= 5: both kept


def test_keywords_become_clean_extra_captions():
    keywords = ("", "hash", "united_kingdom", "Flag", "flag", "0x9c7e2ec", "Jane Doe", "11", "europe")
    assert clipart.clean_keywords(keywords, "Flag", "Jane Doe") == ["united kingdom", "europe"]


def test_renderer_skips_bad_files_by_reason_and_never_raises(tmp_path, monkeypatch):
    good = tmp_path / "good.svg"
    good.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
                    '<rect x="5" y="5" width="30" height="10" fill="red"/></svg>')
    (tmp_path / "broken.svg").write_text("<svg><rect></svg")
    (tmp_path / "empty.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    (tmp_path / "huge.svg").write_bytes(b" " * (render.MAX_SVG_BYTES + 1))
    (tmp_path / "photo.png").write_bytes(b"not a png")
    jobs = [RenderJob(out=str(tmp_path / "out" / f"{name}.png"), where=name, src=str(tmp_path / name))
            for name in ("good.svg", "broken.svg", "empty.svg", "huge.svg", "photo.png")]
    report = CorpusReport("test")
    done = render_images(jobs, report, desc="test")
    assert done == {jobs[0].out}
    assert dict(report.skipped) == {"svg parse error": 1, "blank render": 1, "svg too large": 1, "not an image": 1}
    image = Image.open(jobs[0].out)
    assert image.size == (128, 128) and image.mode == "RGB"
    pixels = np.asarray(image)
    assert (pixels[64, 64] == [255, 0, 0]).all() and (pixels[2, 2] == 255).all()  # cropped to the drawing, centred


def test_a_render_that_hangs_is_stopped_by_the_time_limit(tmp_path, monkeypatch):
    def slow(data, px):
        time.sleep(5)

    monkeypatch.setattr(render, "_rasterise", slow)
    monkeypatch.setattr(render, "RENDER_TIMEOUT_S", 0.2)
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="5" height="5"/></svg>'
    report = CorpusReport("test")
    started = time.perf_counter()
    done = render_images([RenderJob(out=str(tmp_path / "x.png"), where="x", svg=svg)], report, desc="test")
    assert time.perf_counter() - started < 2 and not done
    assert dict(report.skipped) == {"render timeout": 1}
