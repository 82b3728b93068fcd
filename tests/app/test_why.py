"""Why a code hit matched (marked terms, escaped HTML) and the card's scores, copy buttons and editor link."""

from __future__ import annotations

import html
import re

from mmssl.app.cards import code_card, editor_url
from mmssl.app.why import found_terms, mark_terms, query_terms
from mmssl.index import Hit


def test_query_terms_are_bm25_terms_without_function_words():
    assert query_terms("Parse a query string into a dict") == {"parse", "query", "string", "dict"}
    assert query_terms("read_file lines") == {"read", "file", "read_file", "lines"}


def test_marks_are_escaped_and_only_on_matching_words():
    terms = query_terms("parse query")
    marked = mark_terms("parse_qs(<script>alert(1)</script>) & unparse query", terms)
    assert marked == ("<mark>parse_qs</mark>(&lt;script&gt;alert(1)&lt;/script&gt;) &amp; unparse "
                      "<mark>query</mark>")
    assert mark_terms("<b>", frozenset()) == "&lt;b&gt;"
    assert found_terms("def f(qs):\n    return parse_qs(qs)", terms) == ["parse"]


def _hit(**metadata):
    base = {"func_name": "QueryParser.parse_qs", "path": "pkg/q.py", "line": 12, "url": "pkg/q.py:12",
            "repo": "pkg", "signature": "def parse_qs(self, qs)", "docstring": "Parse a query <string>.",
            "original_string": "def parse_qs(self, qs):\n    return split_query(qs)\n"}
    return Hit(7, 0.812, {**base, **metadata}, dense=0.61, lexical=4.25)


def test_card_shows_both_scores_marks_terms_and_copies_escaped_values():
    card = code_card(1, _hit(), query_terms("parse a query"), "/home/me/pkg/q's.py")
    assert "dense 0.610 · lexical 4.25" in card and ">0.812<" in card
    assert "<span class='mmssl-func'><mark>QueryParser</mark>.<mark>parse_qs</mark></span>" in card
    assert "<p class=mmssl-doc><mark>Parse</mark> a <mark>query</mark> &lt;string&gt;.</p>" in card
    assert "in the code: <mark>parse</mark>, <mark>query</mark></div>" in card  # parse_qs, split_query
    copies = [html.unescape(v) for v in re.findall(r"data-copy='([^']*)'", card)]
    assert copies == ["/home/me/pkg/q's.py:12", _hit().metadata["original_string"]]
    assert f"href='{html.escape(editor_url('/home/me/pkg/q' + chr(39) + 's.py', 12))}'" in card
    assert editor_url("/home/me/my project/q.py", 12) == "vscode://file/home/me/my%20project/q.py:12"
    plain = code_card(2, Hit(1, 0.5, _hit().metadata))  # a dense-only hit without a file: no parts, no link
    assert "dense " not in plain and "vscode://" not in plain and "data-copy='pkg/q.py:12'" in plain
