"""Query arithmetic (mmssl.index.query_terms): how strings are read, malformed ones' messages, and the
vector maths (weighted sum of unit vectors, made unit again)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mmssl.index.query_terms import (MAX_TERMS, QueryTerm, QueryTermsError, combine, parse_query, query_vectors,
                                     with_example)


@pytest.mark.parametrize("text, terms", [
    ("a red fire truck", [("a red fire truck", 1.0)]),
    ("beach -people", [("beach", 1.0), ("people", -1.0)]),
    ("beach - people", [("beach", 1.0), ("people", -1.0)]),
    ("2:cat + hat", [("cat", 2.0), ("hat", 1.0)]),
    ("2: cat + hat", [("cat", 2.0), ("hat", 1.0)]),
    (".5:hat - 1.5:dog", [("hat", 0.5), ("dog", -1.5)]),
    ("cat -2:dog +  bird  ", [("cat", 1.0), ("dog", -2.0), ("bird", 1.0)]),
    ("+ cat", [("cat", 1.0)]),
    ("x-ray -bones dogs", [("x-ray", 1.0), ("bones dogs", -1.0)]),  # a term runs to the next operator
    ("t-shirt", [("t-shirt", 1.0)]),
    ("c++ code", [("c++ code", 1.0)]),
    ("a+b", [("a+b", 1.0)]),
    ("12:30 meeting", [("12:30 meeting", 1.0)]),  # a time, not a weight
    ("beach\t-people\n", [("beach", 1.0), ("people", -1.0)]),
    ("笑顔 -猫", [("笑顔", 1.0), ("猫", -1.0)]),
])
def test_queries_are_read_into_signed_weighted_terms(text, terms):
    parsed = parse_query(text)
    assert [(t.text, t.weight) for t in parsed.terms] == terms
    assert parsed.is_plain == (terms == [(terms[0][0], 1.0)])


@pytest.mark.parametrize("text, message", [
    ("", "The query is empty"),
    ("   ", "The query is empty"),
    ("-people", "only subtracts; add what you are looking for"),
    ("- a - b", "only subtracts"),
    ("beach -", "a - has no term after it"),
    ("beach +", "a + has no term after it"),
    ("a - - b", "a - has no term after it"),
    ("a + + b", "a + has no term after it"),
    ("2:", "the weight 2: has no term after it"),
    ("cat - 2:", "the weight 2: has no term after it"),
    ("0:cat", "a weight is 0; weights go above 0 and up to 10"),
    ("cat + 11:hat", "a weight is 11;"),
    ("cat + 0.0:hat", "a weight is 0.0;"),
    (" + ".join(["cat"] * (MAX_TERMS + 1)), f"has {MAX_TERMS + 1} terms; use at most {MAX_TERMS}"),
])
def test_malformed_queries_say_what_to_write(text, message):
    with pytest.raises(QueryTermsError, match=re.escape(message)):
        parse_query(text)


def test_a_modifier_may_only_subtract():
    assert [(t.text, t.weight) for t in parse_query("-text", needs_positive=False).terms] == [("text", -1.0)]
    with pytest.raises(QueryTermsError, match="no term after it"):
        parse_query("red -", needs_positive=False)


def test_describe_and_positive_text():
    parsed = parse_query("2:cat + hat - 0.5:dog")
    assert parsed.describe() == "+ 2×cat + hat − 0.5×dog" and parsed.positive_text == "cat hat"
    assert str(QueryTerm("people", -1.0)) == "− people"


def test_combine_is_the_unit_weighted_sum():
    vectors = np.asarray([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)  # (3, 3)
    np.testing.assert_allclose(combine(vectors, [2, 1, -2]), np.asarray([2, 1, -2]) / 3, atol=1e-7)
    with pytest.raises(QueryTermsError, match="cancel each other out"):
        combine(vectors[[0, 0]], [1, -1])


def _unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_query_vectors_encode_every_term_in_one_batch():
    table = {"cat": [1, 0, 0, 0], "hat": [0, 1, 0, 0], "dog": [0.6, 0, 0.8, 0], "a red car": [0, 0, 0.6, 0.8]}
    batches = []

    def encode(texts):
        batches.append(list(texts))
        return _unit([table[t] for t in texts])

    vectors = query_vectors(encode, [parse_query("a red car"), parse_query("2:cat + hat - dog")])  # (2, 4)
    assert batches == [["a red car", "cat", "hat", "dog"]]
    np.testing.assert_array_equal(vectors[0], _unit([table["a red car"]])[0])  # a plain query: its embedding as is
    expected = np.asarray([2 - 0.6, 1, -0.8, 0])
    np.testing.assert_allclose(vectors[1], expected / np.linalg.norm(expected), atol=1e-6)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1, 1])


def test_an_example_image_is_one_more_term():
    image = _unit([[1, 0, 0]])[0]
    red = _unit([[0, 1, 0]])
    moved = with_example(image, parse_query("red"), lambda texts: red)
    np.testing.assert_allclose(moved, [2 ** -0.5, 2 ** -0.5, 0], atol=1e-6)
    away = with_example(image, parse_query("-0.5:red", needs_positive=False), lambda texts: red)
    np.testing.assert_allclose(away, np.asarray([1, -0.5, 0]) / np.sqrt(1.25), atol=1e-6)
    assert with_example(image, None, lambda texts: pytest.fail("no text to encode")) is image
