"""Every image corpus splits by one concept key: a concept never sits in train in one corpus and in
valid/test in another (the cross-corpus leak game-icons had while it grouped by dashed names)."""

import pytest

from mmssl.data import game_icons
from mmssl.data.build import IMAGE_CORPORA, LARGE_IMAGE_CORPORA
from mmssl.data.corpus import split_conflicts, write_splits
from mmssl.data.iconsets import concept_of
from mmssl.data.paths import corpus_dir
from mmssl.data.splits import UNSEEN_SPLIT, split_of


def _record(source: str, group: str, split: str | None = None) -> dict:
    concept_split = split_of(group)
    return {"id": f"{source}:{group}", "image": "x.png", "text": group, "group": group,
            "split": split or concept_split, "concept_split": concept_split, "source": source}


def _concept_in(split: str) -> str:
    return next(f"concept {i}" for i in range(1000) if split_of(f"concept {i}") == split)


def test_game_icons_groups_by_the_iconsets_concept_key():
    for name in ("shopping-cart", "3d-glasses", "battery-100", "lock2"):
        assert game_icons.group_of(name) == concept_of(game_icons.caption_of(name))
    assert game_icons.group_of("battery-100") == "battery"
    assert game_icons.group_of("shopping-cart") == "shopping cart"


def test_split_conflicts_finds_a_concept_split_two_ways(tmp_path):
    train_concept, test_concept = _concept_in("train"), _concept_in("test")
    write_splits([_record("a", train_concept), _record("a", test_concept)], tmp_path / "a")
    # corpus b holds the train concept under the unseen split (a held-out set): not a conflict,
    # since its concept_split agrees; and the test concept forced into train: a conflict
    write_splits([_record("b", train_concept, UNSEEN_SPLIT), {**_record("b", test_concept), "split": "train",
                  "concept_split": "train"}], tmp_path / "b", splits=("train", "valid", "test", UNSEEN_SPLIT))
    assert split_conflicts({"a": tmp_path / "a", "b": tmp_path / "b"}) == [(test_concept, "a", "test", "b", "train")]


def test_split_conflicts_empty_when_keys_agree(tmp_path):
    groups = [_concept_in(s) for s in ("train", "valid", "test")]
    for name in ("a", "b", "c"):
        write_splits([_record(name, g) for g in groups], tmp_path / name)
    assert split_conflicts({name: tmp_path / name for name in "abc"}) == []


@pytest.mark.data
def test_built_image_corpora_agree_on_every_concept_split():
    folders = {name: corpus_dir(name) for name in IMAGE_CORPORA + LARGE_IMAGE_CORPORA}
    assert all((folder / "train.jsonl").exists() for folder in folders.values()), folders
    assert split_conflicts(folders) == []
