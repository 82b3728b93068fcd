"""Reading the user's queries files (TSV, JSONL, feedback votes) and matching expected items."""

import json

import numpy as np
import pytest

from mmssl.eval.user_queries import (ExpectedItemError, QueriesFileError, parse_user_queries, random_row,
                                     relevance_matrix, system_row)


def test_tsv_and_jsonl_give_the_same_queries():
    tsv, info = parse_user_queries("# my queries\na red  truck\tcars/truck.png; cars/engine.png\n\ncat\tcat.jpg\n")
    assert info == {"format": "tsv", "no_positive": 0}
    assert [(q.text, q.expected, q.line) for q in tsv] == [("a red truck", ["cars/truck.png", "cars/engine.png"], 2),
                                                            ("cat", ["cat.jpg"], 4)]
    jsonl, info = parse_user_queries(json.dumps({"query": "a red truck", "expected": ["cars/truck.png",
                                                                                        "cars/engine.png"]})
                                     + "\n" + json.dumps({"query": "cat", "expected": "cat.jpg"}) + "\n")
    assert info["format"] == "jsonl" and [(q.text, q.expected) for q in jsonl] == [(q.text, q.expected) for q in tsv]


def test_feedback_votes_fold_to_the_latest_vote_per_pair():
    votes = [("dedent", "textwrap.py:dedent", "up"), ("dedent", "textwrap.py:indent", "up"),
             ("dedent", "textwrap.py:indent", "down"), ("quote", "shlex.py:quote", "down")]
    text = "".join(json.dumps({"query": q, "item": i, "label": label, "index": "proj"}) + "\n"
                   for q, i, label in votes)
    queries, info = parse_user_queries(text)
    assert [(q.text, q.expected, q.line) for q in queries] == [("dedent", ["textwrap.py:dedent"], 3)]
    assert info["no_positive"] == 1  # "quote" has only a down vote
    with pytest.raises(QueriesFileError, match="every feedback vote is down"):
        parse_user_queries(json.dumps({"query": "q", "item": "a.py", "label": "down"}))


@pytest.mark.parametrize("text, message", [
    ("a query without a tab\n", "q.tsv:1: no tab"),
    ("fine\tx.png\n \tx.png\n", "q.tsv:2: the query and at least one expected item must be non-empty"),
    ('{"query": "a", "expected": ["x"]}\n{"query": "b", "expected": [}\n', "q.tsv:2: not valid JSON"),
    ('{"query": "a", "expected": []}\n', "q.tsv:1: 'expected' is empty"),
    ('{"query": "a", "expected": [1]}\n', "q.tsv:1: 'expected' must be a string or a list"),
    ('{"query": "a", "label": "meh", "item": "x"}\n', "q.tsv:1: give 'expected'"),
    ('{"expected": ["x"]}\n', "q.tsv:1: a JSON query needs a non-empty 'query'"),
    ("\n# only a comment\n", "q.tsv holds no queries"),
])
def test_a_line_that_does_not_parse_is_named(text, message):
    with pytest.raises(QueriesFileError) as error:
        parse_user_queries(text, "q.tsv")
    assert message in str(error.value)


def test_code_references_name_files_functions_and_repos():
    items = [{"path": "strings.py", "func_name": "QueryParser.parse_query", "repo": "proj"},
             {"path": "strings.py", "func_name": "reverse_words", "repo": "proj"},
             {"path": "sums.py", "func_name": "add", "repo": "proj"}]
    queries, _ = parse_user_queries("a\tstrings.py:parse_query\nb\tstrings.py\nc\tproj/sums.py:add;"
                                    "strings.py:QueryParser.parse_query\n")
    relevance = relevance_matrix(queries, items, "code")
    assert relevance.tolist() == [[True, False, False], [True, True, False], [True, False, True]]


def test_image_references_relative_to_the_folder_or_absolute(tmp_path):
    items = [{"path": str(tmp_path / "cars" / "truck.png")}, {"path": str(tmp_path / "cat.jpg")}]
    queries, _ = parse_user_queries(f"a\tcars/truck.png\nb\t{tmp_path / 'cat.jpg'}\nc\t./cars/../cat.jpg\n")
    assert relevance_matrix(queries, items, "image", str(tmp_path)).tolist() == [[True, False], [False, True],
                                                                                  [False, True]]
    queries, _ = parse_user_queries("a\ttruck.png\n")
    with pytest.raises(ExpectedItemError, match=f"relative to the indexed folder {tmp_path}"):
        relevance_matrix(queries, items, "image", str(tmp_path), "photos")


def test_system_row_uses_pessimistic_ties_and_random_row_is_exact():
    relevance = np.array([[True, False, False, False], [False, False, True, True]])
    scores = np.array([[0.5, 0.5, 0.1, 0.0], [0.9, 0.2, 0.3, 0.1]])
    row = system_row("s", scores, relevance)
    assert row["ranks"] == [2, 2] and row["mrr"] == pytest.approx(0.5) and row["recall@1"] == 0.0
    expected = random_row(relevance)
    # one gold of 4: MRR = (1 + 1/2 + 1/3 + 1/4) / 4; two of 4: P(best at 1) = 1/2, at 2 = 1/3, at 3 = 1/6
    assert expected["mrr"] == pytest.approx(((25 / 12) / 4 + (1 / 2 + 1 / 6 + 1 / 18)) / 2)
