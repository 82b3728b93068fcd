"""Query arithmetic for image search (as rclip does it): weighted terms added and subtracted in embedding space.

    parse_query("beach -people")        # beach, minus people
    parse_query("2:cat + hat")          # twice cat, plus hat
    parse_query("red car - 0.5:night")  # red car, minus half of night

A query is terms joined by ``+`` and ``-``; an operator counts only at the start or after a space, so
``t-shirt``, ``c++`` and ``x-ray`` stay words, and a term runs to the next operator (``beach -people
dogs`` subtracts "people dogs"). A term may start with a weight, ``NUMBER:`` (``2:cat``, ``.5:hat``);
``12:30`` is text, not a weight. The query vector is the weighted sum of the terms' unit vectors, made
unit again (:func:`combine`); an example image joins as one more term (:func:`with_example`), so "this
image, but red" is the image + red.

Errors a user can cause raise :class:`QueryTermsError` saying what to write instead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

OPERATOR = re.compile(r"(?:^|(?<=\s))([+-])")  # + or - at the start or after whitespace
WEIGHT = re.compile(r"^(\d+(?:\.\d*)?|\.\d+):(?!\d)\s*")  # 2:cat, 0.5:hat; not 12:30
MAX_TERMS = 8
MAX_WEIGHT = 10.0
SYNTAX_HELP = "write terms joined by + and -, e.g. “beach -people” or “2:cat + hat”"


class QueryTermsError(ValueError):
    """A query whose arithmetic cannot be read; the message says what to write instead."""


@dataclass(frozen=True)
class QueryTerm:
    """One term: its text and its signed weight (negative: subtracted)."""

    text: str
    weight: float

    def __str__(self) -> str:
        sign = "−" if self.weight < 0 else "+"
        size = abs(self.weight)
        return f"{sign} {'' if size == 1 else f'{size:g}×'}{self.text}"


@dataclass(frozen=True)
class ParsedQuery:
    """The terms of one query, in the order written."""

    terms: tuple[QueryTerm, ...]

    @property
    def is_plain(self) -> bool:
        """One term of weight 1: an ordinary query, searched exactly as before arithmetic existed."""
        return len(self.terms) == 1 and self.terms[0].weight == 1.0

    @property
    def positive_text(self) -> str:
        """The added terms' words (what a lexical ranking can read)."""
        return " ".join(t.text for t in self.terms if t.weight > 0)

    def describe(self) -> str:
        """``+ beach − people``: how the query was read, for the status line."""
        return " ".join(str(t) for t in self.terms)


def parse_query(text: str, needs_positive: bool = True) -> ParsedQuery:
    """Read the terms of ``text`` (see the module docstring). ``needs_positive=False`` lets every term be
    subtracted (a modifier of an example image: "this, but -red").

    Raises:
        QueryTermsError: an operator without a term, a bad weight, too many terms, or nothing added.
    """
    text = " ".join(str(text or "").split())
    if not text:
        raise QueryTermsError(f"The query is empty; {SYNTAX_HELP}.")
    pieces = OPERATOR.split(text)  # [before the first operator, op, term, op, term, ...]
    chunks = [("+", pieces[0])] if pieces[0].strip() else []
    chunks += [(pieces[i], pieces[i + 1]) for i in range(1, len(pieces), 2)]
    terms = tuple(_term(sign, chunk, text) for sign, chunk in chunks)
    if len(terms) > MAX_TERMS:
        raise QueryTermsError(f"“{text}” has {len(terms)} terms; use at most {MAX_TERMS}.")
    if needs_positive and not any(t.weight > 0 for t in terms):
        raise QueryTermsError(f"“{text}” only subtracts; add what you are looking for, e.g. “beach -people”.")
    return ParsedQuery(terms)


def _term(sign: str, chunk: str, query: str) -> QueryTerm:
    chunk = chunk.strip()
    weight = 1.0
    found = WEIGHT.match(chunk)
    if found:
        weight = float(found.group(1))
        chunk = chunk[found.end():].strip()
        if not chunk:
            raise QueryTermsError(f"In “{query}” the weight {found.group(1)}: has no term after it; write it "
                                  "right before a term, e.g. “2:cat”.")
        if not (0 < weight <= MAX_WEIGHT) or not math.isfinite(weight):
            raise QueryTermsError(f"In “{query}” a weight is {found.group(1)}; weights go above 0 and up to "
                                  f"{MAX_WEIGHT:g}, e.g. “2:cat”.")
    if not chunk:
        raise QueryTermsError(f"In “{query}” a {'-' if sign == '-' else '+'} has no term after it; {SYNTAX_HELP}.")
    return QueryTerm(chunk, -weight if sign == "-" else weight)


def combine(vectors: np.ndarray, weights) -> np.ndarray:
    """The unit query vector of term vectors ``(T, E)`` and their signed ``weights`` ``(T,)``: ``(E,)``.

    Raises:
        QueryTermsError: the terms cancel out (their weighted sum is ~0).
    """
    total = (np.asarray(weights, dtype=np.float32)[:, None] * vectors).sum(axis=0)  # (E,)
    norm = float(np.linalg.norm(total))
    if norm < 1e-6:
        raise QueryTermsError("The terms cancel each other out; change a weight or a term.")
    return (total / norm).astype(np.float32)


def query_vectors(encode_text, queries: list[ParsedQuery]) -> np.ndarray:
    """One unit vector per query, ``(Q, E)``: every term of every query encoded in one batch, then combined.
    A plain query's vector is exactly its text's embedding."""
    texts = [t.text for q in queries for t in q.terms]
    encoded = np.asarray(encode_text(texts), dtype=np.float32)  # (sum of T, E)
    rows, start = [], 0
    for query in queries:
        count = len(query.terms)
        block = encoded[start:start + count]  # (T, E)
        rows.append(block[0] if query.is_plain else combine(block, [t.weight for t in query.terms]))
        start += count
    return np.stack(rows)  # (Q, E)


def with_example(example_vector: np.ndarray, modifier: ParsedQuery | None, encode_text) -> np.ndarray:
    """An example image's unit vector ``(E,)`` moved by text terms ("this, but red"): ``(E,)``; the image
    weighs 1, as one term."""
    if modifier is None:
        return example_vector
    texts = np.asarray(encode_text([t.text for t in modifier.terms]), dtype=np.float32)  # (T, E)
    vectors = np.concatenate([example_vector[None, :], texts])  # (1 + T, E)
    return combine(vectors, [1.0, *(t.weight for t in modifier.terms)])
