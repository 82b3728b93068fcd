"""The full code corpus: stdlib + the pinned wheels (downloads ~160 MB; run with `pytest -m data`)."""

from __future__ import annotations

import json

import pytest

from mmssl.data import code
from mmssl.data.corpus import load_corpus
from mmssl.data.paths import corpus_dir
from mmssl.data.splits import SPLITS

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def full_corpus():
    code.fetch()
    return code.build()  # returns the saved report when already built from the same wheels


def test_every_pinned_wheel_is_fetched_and_read(full_corpus):
    assert full_corpus.extra["missing_wheels"] == []
    repos = {code._wheel_repo(spec) for spec in code.WHEELS}
    assert repos | {"stdlib"} == set(full_corpus.extra["per_repo"])
    assert all(full_corpus.extra["per_repo"][r]["total"] >= 50 for r in repos)


def test_target_size_and_all_splits(full_corpus):
    assert full_corpus.total >= 40_000
    assert all(full_corpus.pairs[s] >= 3_000 for s in SPLITS)
    assert all(full_corpus.extra["groups_per_split"][s] >= 50 for s in SPLITS)


def test_zero_overlap_between_splits(full_corpus):
    overlap = code.split_overlap(corpus_dir("code"))  # recomputed from the files, not trusted
    assert overlap["code_hashes_in_two_splits"] == 0
    assert overlap["groups_in_two_splits"] == 0


def test_records_are_codesearchnet_shaped(full_corpus):
    ds = load_corpus("code", "valid")
    assert len(ds) == full_corpus.pairs["valid"]
    row = ds[0]
    for field in ("repo", "path", "func_name", "original_string", "language", "code", "code_tokens",
                  "docstring", "docstring_tokens", "url", "partition", "signature", "line", "group"):
        assert field in row
    with open(corpus_dir("code") / "test.jsonl", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            assert len(rec["docstring_tokens"]) >= 3 and rec["code"].count("\n") >= 2
            name = rec["func_name"].split(".")[-1]
            assert not (name.startswith("__") and name.endswith("__"))  # "__private" methods stay
            assert "test" not in rec["func_name"].lower()
