"""Why a code hit matched: the query's terms found in its name, docstring and code, highlighted in
escaped HTML, beside its dense (cosine) and lexical (BM25) scores.

    terms = query_terms("parse a query string into a dict")   # {"parse", "query", "string", "dict"}
    mark_terms("parse_qs(qs)", terms)  # '<mark>parse_qs</mark>(qs)': text escaped, words marked

Terms are BM25's own (:func:`mmssl.eval.bm25.lexical_terms`: identifiers split into their parts, whole
ones kept), so a marked word is one the lexical score counted; short function words are not marked.
"""

from __future__ import annotations

import html
import re

from mmssl.data.code_text import text_words
from mmssl.eval.bm25 import lexical_terms

# words BM25 counts but a reader gains nothing from seeing marked
UNMARKED = frozenset("a an and are as at be by for from in into is it of on or the to with".split())
_WORD_OR_GAP = re.compile(r"[A-Za-z0-9_]+|[^A-Za-z0-9_]+")


def query_terms(query: str) -> frozenset[str]:
    """The BM25 terms of ``query`` worth marking (lowercased)."""
    return frozenset(t for t in lexical_terms(text_words(query)) if len(t) > 1 and t not in UNMARKED)


def word_matches(word: str, terms: frozenset[str]) -> bool:
    """Whether any BM25 term of ``word`` (``parse_qs`` -> parse, qs, parse_qs) is a query term."""
    return bool(terms) and any(t in terms for t in lexical_terms([word]))


def mark_terms(text: str, terms: frozenset[str]) -> str:
    """``text`` as escaped HTML with each word holding a query term wrapped in ``<mark>``."""
    out = []
    for piece in _WORD_OR_GAP.findall(text):
        escaped = html.escape(piece)
        is_word = piece[0].isalnum() or piece[0] == "_"
        out.append(f"<mark>{escaped}</mark>" if is_word and word_matches(piece, terms) else escaped)
    return "".join(out)


def found_terms(text: str, terms: frozenset[str]) -> list[str]:
    """The query terms that occur in ``text`` (as BM25 reads it), in the query terms' sorted order."""
    present = set(lexical_terms(text_words(text)))
    return sorted(t for t in terms if t in present)
