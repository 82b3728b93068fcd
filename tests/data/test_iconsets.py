"""The icon-sets corpus on tiny hand-made Iconify packages (no network), and on the real package
(``data`` tests: they need `make data-large`'s ``@iconify/json``)."""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from iconify_fixtures import (
    BROKEN,
    CIRCLE,
    ENGLISH,
    RED_CIRCLE,
    SQUARE,
    read_records,
    write_set,
)

from mmssl.data import iconify, iconsets
from mmssl.data.corpus import load_corpus
from mmssl.data.iconsets import (
    IconSetsConfig,
    build_iconsets,
    clean_name,
    concept_first_sample,
    concept_of,
)
from mmssl.data.licences import licence_problem
from mmssl.data.report import format_reports
from mmssl.data.splits import SPLITS, UNSEEN_SPLIT, split_of

RESERVED_FIXTURES = ("tabler", "lucide", "lucide-lab", "twemoji")
UNSEEN = ("sketchy", "pixely", "inky")


def _concept_icons(body: str) -> dict[str, str]:
    """Ten concepts, so both concept splits and the unseen split get several."""
    names = ["shopping-cart", "home", "star", "heart", "tree", "leaf", "bell", "book", "camera", "folder"]
    return {name: body for name in names}


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    package = tmp_path_factory.mktemp("iconify") / "package"
    write_set(package, "lines", {
        **_concept_icons(SQUARE),
        "shopping-cart-outline": SQUARE,  # a style variant of shopping-cart
        "home-light": SQUARE,  # "light" is a style here: "home" is in the set
        "traffic-light": SQUARE,  # and a word here: no "traffic" in the set
        "battery-100": SQUARE, "battery-20": SQUARE,
        "123": SQUARE,  # no letters
        "xq-zzv": SQUARE,  # no English word
        "broken-house": BROKEN,  # fails to render
        "old-house": SQUARE,  # hidden
    }, aliases={"basket": {"parent": "shopping-cart"}}, hidden=("old-house",))
    write_set(package, "colours", {name.replace("-", "_"): RED_CIRCLE for name in _concept_icons("")},
              "Apache-2.0", palette=True)
    for prefix in UNSEEN:
        write_set(package, prefix, _concept_icons(CIRCLE), "CC-BY-4.0")
    write_set(package, "mystery", _concept_icons(SQUARE), "WTFPL-2")  # unknown licence
    write_set(package, "nolicence", _concept_icons(SQUARE), None)
    write_set(package, "gnu", _concept_icons(SQUARE), "GPL-3.0-or-later")
    write_set(package, "codes", {f"zq{i}x": SQUARE for i in range(10)} | {"star": SQUARE})  # 1 in 11 has a word
    write_set(package, "smileys", _concept_icons(CIRCLE), category="Emoji")
    for prefix in RESERVED_FIXTURES:
        write_set(package, prefix, _concept_icons(SQUARE))
    (package / "json" / "corrupt.json").write_text("{not json")
    return package


@pytest.fixture(scope="module")
def built(package, tmp_path_factory):
    out = tmp_path_factory.mktemp("iconsets")
    config = IconSetsConfig(unseen_sets=UNSEEN, processes=1)
    report = build_iconsets(package, out, config, ENGLISH)
    return out, report, read_records(out)


# ---------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize("name, siblings, caption", [
    ("shopping-cart", (), "shopping cart"),
    ("shopping-cart-outline", (), "shopping cart"),
    ("access-time-24-regular", ("access-time-20-regular",), "access time"),
    ("home-light", ("home",), "home"),
    ("home-light", ("home-bold",), "home"),
    ("traffic-light", ("traffic-cone",), "traffic light"),
    ("traffic-light-outline", ("traffic-light",), "traffic light"),
    ("text-bold", (), "text bold"),
    ("baseline-access-alarm", ("outline-access-alarm",), "access alarm"),
    ("round-table", (), "round table"),
    ("close-2", ("close",), "close"),
    ("numeric-2", (), "numeric 2"),
    ("solid", (), "solid"),  # never stripped to nothing
])
def test_clean_name_strips_styles_not_words(name, siblings, caption):
    assert clean_name(name, frozenset({name, *siblings})) == caption


def test_concepts_drop_case_punctuation_and_trailing_numbers():
    assert concept_of("Battery 100") == concept_of("battery 20") == concept_of("battery") == "battery"
    assert concept_of("lock2") == "lock" and concept_of("3d glasses") == "3d glasses"
    assert concept_of("shopping cart") == "shopping cart" == concept_of("Shopping_Cart")


def test_names_without_letters_or_words_are_refused():
    assert iconsets.name_problem("123", ENGLISH) == "name has no letters"
    assert iconsets.name_problem("xq zzv", ENGLISH) == "no English word in name"
    assert iconsets.name_problem("star logo", ENGLISH) is None
    assert iconsets.name_problem("logo icon", ENGLISH | {"logo", "icon"}) == "no English word in name"


def test_concept_first_sample_takes_every_concept_before_a_second_style():
    items = [(f"{c}-{style}", c) for c in ("home", "star", "bell") for style in ("a", "b", "c")]
    sample = concept_first_sample(items, 4, salt="s")
    assert len(sample) == 4 and {c for _, c in sample} == {"home", "star", "bell"}
    assert sample == concept_first_sample(list(reversed(items)), 4, salt="s")  # deterministic
    assert concept_first_sample(items, None, salt="s") == items
    shared_first = concept_first_sample(items, 2, salt="s", sets_per_concept={"bell": 7, "star": 3, "home": 1})
    assert sorted(c for _, c in shared_first) == ["bell", "star"]  # the concepts more sets draw
    assert set(shared_first) <= set(concept_first_sample(items, 5, salt="s", sets_per_concept={"bell": 7, "star": 3}))


@pytest.mark.parametrize("spdx, reason", [
    ("MIT", None), ("CC-BY-SA-4.0", None), ("OFL-1.1", None), ("CC0-1.0", None),
    ("GPL-2.0-only", "copyleft licence (GPL-2.0-only)"), ("MPL-2.0", "copyleft licence (MPL-2.0)"),
    ("CC-BY-NC-4.0", "non-commercial licence (CC-BY-NC-4.0)"),
    ("WTFPL-2", "unknown licence (WTFPL-2)"), (None, "unknown licence (none given)"),
])
def test_licence_policy(spdx, reason):
    info = {"license": {"spdx": spdx}} if spdx else {}
    assert licence_problem(info) == reason


# ---------------------------------------------------------------------------------------------
# Deny list


def test_deny_list_excludes_every_reserved_set(package, built):
    from mmssl.data.report import CorpusReport

    report = CorpusReport("t")
    listed = iconify.list_sets(package, report)
    assert not set(RESERVED_FIXTURES) & set(listed)
    assert report.skipped["set: reserved source (deny list)"] == len(RESERVED_FIXTURES)
    _out, built_report, records = built
    assert not {r["icon_set"] for r in records} & set(RESERVED_FIXTURES)
    assert not set(RESERVED_FIXTURES) & set(built_report.extra["sets"])
    # and the package is unpacked without them: the fetch filter drops their files
    assert iconify._reserved_member("package/json/tabler.json") and iconify._reserved_member("package/json/lucide-lab.json")
    assert not iconify._reserved_member("package/json/mdi.json")


# ---------------------------------------------------------------------------------------------
# The build


def test_bad_sets_and_icons_are_skipped_by_reason(built):
    _out, report, _records = built
    assert report.skipped["set: unknown licence (WTFPL-2)"] == 1
    assert report.skipped["set: unknown licence (none given)"] == 1
    assert report.skipped["set: copyleft licence (GPL-3.0-or-later)"] == 1
    assert report.skipped["set: names carry little meaning"] == 1  # "codes": 1 of 11 names has a word
    assert report.skipped["set: emoji artwork (emoji-artworks corpus)"] == 1
    assert report.skipped["set: unreadable JSON"] == 1
    assert report.skipped["name has no letters"] == 1 and report.examples["name has no letters"] == ["lines:123"]
    assert report.skipped["no English word in name"] == 1
    assert report.skipped["svg parse error"] == 1 and report.examples["svg parse error"] == ["lines:broken-house"]
    assert report.skipped["hidden (deprecated) icon"] == 1 and report.skipped["alias of another icon"] == 1
    assert report.extra["sets_kept"] == ["colours", "inky", "lines", "pixely", "sketchy"]
    assert report.extra["sets"]["lines"]["meaningful_share"] == round(17 / 19, 3)  # all but 123, xq-zzv


def test_records_captions_and_pairs(built):
    out, report, records = built
    # lines: 10 concepts + outline + home-light + traffic-light + 2 batteries; colours 10; 3 unseen x 10
    assert report.total == len(records) == 15 + 10 + 30
    assert report.extra["pairs_per_set"]["lines"] == {
        s: n for s, n in _count(r["split"] for r in records if r["icon_set"] == "lines").items()}
    by_id = {r["id"]: r for r in records}
    assert by_id["iconsets:lines:shopping-cart-outline"]["text"] == "shopping cart"
    assert by_id["iconsets:lines:home-light"]["group"] == "home"
    assert by_id["iconsets:lines:traffic-light"]["text"] == "traffic light"
    assert by_id["iconsets:lines:battery-100"]["text"] == "battery 100"
    assert by_id["iconsets:lines:battery-100"]["group"] == by_id["iconsets:lines:battery-20"]["group"] == "battery"
    assert by_id["iconsets:colours:shopping_cart"]["text"] == "shopping cart"
    for r in records:
        assert r["text"] == r["captions"][0] and r["source"] == "iconsets"
        assert r["licence"] == report.extra["sets"][r["icon_set"]]["licence"]
        assert (out / r["image"]).is_file()


def test_images_keep_palette_colours_and_draw_monochrome_black(built):
    out, _report, records = built
    by_id = {r["id"]: r for r in records}
    line = np.asarray(Image.open(out / by_id["iconsets:lines:home"]["image"]), dtype=np.int16)  # (128, 128, 3)
    colour = np.asarray(Image.open(out / by_id["iconsets:colours:home"]["image"]), dtype=np.int16)
    assert line.shape == colour.shape == (128, 128, 3)
    assert (line.max(axis=2) - line.min(axis=2)).max() <= 2 and line.min() == 0  # black on white, no colour
    red = (colour[..., 0] > 180) & (colour[..., 1] < 80) & (colour[..., 2] < 80)
    assert red.mean() > 0.3  # the palette set keeps its red


def test_concept_splits_are_disjoint_across_sets(built):
    _out, _report, records = built
    splits_of_concept, sets_of_concept = defaultdict(set), defaultdict(set)
    for r in records:
        assert r["concept_split"] == split_of(r["group"])
        if r["split"] != UNSEEN_SPLIT:
            splits_of_concept[r["group"]].add(r["split"])
        sets_of_concept[r["group"]].add(r["icon_set"])
    assert all(len(s) == 1 for s in splits_of_concept.values())
    assert len(sets_of_concept["shopping cart"]) == 5  # one concept, five artworks, one split
    assert {next(iter(s)) for s in splits_of_concept.values()} >= {"train", "test"}


def test_unseen_sets_are_absent_from_train_valid_and_test(built):
    out, report, records = built
    for r in records:
        assert (r["split"] == UNSEEN_SPLIT) == (r["icon_set"] in UNSEEN)
    assert report.pairs[UNSEEN_SPLIT] == 30 and report.extra["unseen_sets"] == sorted(UNSEEN)
    for split in SPLITS:
        assert not {json.loads(line)["icon_set"] for line in (out / f"{split}.jsonl").read_text().splitlines()} & set(UNSEEN)
    unseen = load_corpus("iconsets", UNSEEN_SPLIT, root=out)
    assert len(unseen) == 30 and set(unseen["icon_set"]) == set(UNSEEN)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in unseen["image"])
    assert "unseen" in format_reports([report]).splitlines()[0]


def test_a_rebuild_reuses_the_rendered_images(package, built, tmp_path):
    out, report, records = built
    again = build_iconsets(package, out, IconSetsConfig(unseen_sets=UNSEEN, processes=1), ENGLISH)
    assert again.extra["rendered"] == 0 and again.extra["cached_images"] == len(records)
    assert again.pairs == report.pairs


def test_the_cap_keeps_one_icon_per_concept_first(package, tmp_path):
    report = build_iconsets(package, tmp_path, IconSetsConfig(max_icons_per_set=11, unseen_sets=(), processes=1),
                            ENGLISH)
    lines = report.extra["sets"]["lines"]
    assert lines["usable"] == 16 and lines["selected"] == 11  # usable: before rendering (broken-house)
    records = [r for r in read_records(tmp_path) if r["icon_set"] == "lines"]
    # 13 concepts, 11 slots: no concept twice (one slot may be broken-house, which fails to render)
    assert len({r["group"] for r in records}) == len(records) >= 10


def _count(values) -> dict:
    out = defaultdict(int)
    for v in values:
        out[v] += 1
    return dict(out)


# ---------------------------------------------------------------------------------------------
# The real package (`make data-large`)


@pytest.mark.data
def test_real_package_has_no_reserved_set_and_filters_meaningless_names():
    from mmssl.data.clipart import load_english_words

    iconsets.fetch()
    sets = iconify.list_sets(iconify.package_dir())
    assert len(sets) > 200 and not [p for p in sets if any(w in p for w in ("tabler", "lucide", "twemoji"))]
    english = load_english_words()
    share = {p: iconsets.meaningful_share(iconsets.set_captions(iconify.read_icon_set(sets[p])), english)
             for p in ("circle-flags", "mdi", "iconoir")}
    threshold = iconsets.IconSetsConfig().min_meaningful_share
    assert share["circle-flags"] < threshold < 0.8 < min(share["mdi"], share["iconoir"])


def test_round_robin_renders_every_sets_first_icons_first():
    assert iconsets.round_robin([["a1", "a2", "a3"], [], ["b1"], ["c1", "c2"]]) == ["a1", "b1", "c1", "a2", "c2", "a3"]
    assert iconsets.round_robin([]) == []


def test_make_data_leaves_the_large_corpora_to_their_own_target():
    from mmssl.data import build

    assert set(build.LARGE_IMAGE_CORPORA) == {"iconsets", "emoji-artworks"} <= set(build.CORPORA)
    assert not set(build.LARGE_IMAGE_CORPORA) & set(build.DEFAULT_CORPORA)
    assert set(build.DEFAULT_CORPORA) | set(build.LARGE_IMAGE_CORPORA) == set(build.CORPORA)
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    assert "\tmmssl data build iconsets emoji-artworks" in makefile.replace("$(PY) -m ", "")
