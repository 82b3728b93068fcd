"""Splits are a pure, stable function of the group key, with the requested fractions."""

from collections import Counter

import pytest

from mmssl.data.splits import SPLITS, split_of


def test_same_group_same_split_every_time():
    groups = [f"group-{i}" for i in range(200)]
    first = [split_of(g) for g in groups]
    assert [split_of(g) for g in groups] == first
    assert set(first) == set(SPLITS)


def test_assignment_is_pinned():
    # The split is a hash of "mmssl:<group>"; changing the scheme would silently reshuffle every
    # corpus and leak test items into training runs made before the change.
    assert [split_of(g) for g in ("1f600", "json", "g3", "os.path", "email.parser", "g17")] == \
        ["train", "test", "valid", "train", "test", "valid"]


def test_default_fractions_on_10k_groups():
    counts = Counter(split_of(f"g{i}") for i in range(10_000))
    assert abs(counts["train"] / 10_000 - 0.7) < 0.015
    assert abs(counts["valid"] / 10_000 - 0.1) < 0.01
    assert abs(counts["test"] / 10_000 - 0.2) < 0.012


def test_custom_fractions_and_salt():
    counts = Counter(split_of(f"g{i}", valid_fraction=0.25, test_fraction=0.25) for i in range(10_000))
    assert abs(counts["train"] / 10_000 - 0.5) < 0.015
    assert abs(counts["valid"] / 10_000 - 0.25) < 0.015
    assert all(split_of(f"g{i}", 0.0, 0.0) == "train" for i in range(500))
    salted = sum(split_of(f"g{i}") != split_of(f"g{i}", salt="other") for i in range(1000))
    assert 300 < salted < 600  # an independent reshuffle: P(differ) = 1 - (.49 + .01 + .04) = 0.46


@pytest.mark.parametrize("valid, test", [(-0.1, 0.2), (0.1, -0.01), (0.5, 0.5), (0.9, 0.2)])
def test_bad_fractions_raise(valid, test):
    with pytest.raises(ValueError, match="split fractions"):
        split_of("g", valid_fraction=valid, test_fraction=test)
