"""An index's 👍 votes become training pairs (👎 and overturned votes kept out, vanished items counted),
split by query, with the held-out queries read back for evaluation."""

import json
import shutil
from pathlib import Path

import pytest
from own_data import stdlib_project
from tiny_models import save_tiny_code_model

from mmssl.app.feedback import FeedbackLog, feedback_path
from mmssl.data.user import DataSpec, DataSpecError
from mmssl.index import build_index, code_folder_items
from mmssl.index.feedback_pairs import feedback_records, held_out_queries, training_corpus
from mmssl.model import load_model

# (query, voted function) -> label; the last vote on a pair wins
VOTES = [("remove common leading whitespace from lines", "textwrap.py:dedent", "up"),
         ("wrap a paragraph to a width", "textwrap.py:wrap", "up"),  # the function, not TextWrapper.wrap
         ("wrap a paragraph to a width", "textwrap.py:fill", "up"),
         ("fill text in a wrapper object", "textwrap.py", "up"),  # a whole file: each of its functions
         ("wrap a paragraph to a width", "shlex.py:split", "down"),
         ("split a command line into words", "shlex.py:split", "up"),
         ("quote a string for the shell", "shlex.py:quote", "up"),
         ("quote a string for the shell", "shlex.py:join", "up"),
         ("quote a string for the shell", "shlex.py:join", "down"),  # overturned: kept out
         ("indent every line", "textwrap.py:indent", "up"),
         ("shorten text to fit", "textwrap.py:shorten", "up"),
         ("join words into a command line", "shlex.py:join", "down"),  # only a 👎: the query is left out
         ("a function that was deleted", "gone.py:vanished", "up")]


@pytest.fixture(scope="module")
def voted_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("feedback-pairs")
    project = stdlib_project(root / "proj", ("textwrap", "shlex"))
    model = load_model(save_tiny_code_model(root / "code-tiny"), device="cpu")
    items, source = code_folder_items(project)
    index = build_index(root / "indexes" / "proj", model, items, source=source, progress=False)
    folder = index.folder
    index.close()
    log = FeedbackLog(feedback_path(folder))
    for query, item, label in VOTES:
        log.record(query, item, label, index="proj")
    return root, folder


def test_up_votes_become_pairs_with_the_function_as_indexed(voted_index):
    _, folder = voted_index
    records, report, kind = feedback_records(folder)
    assert kind == "code"
    pairs = sorted((r["docstring"], f"{r['path']}:{r['func_name']}") for r in records)
    assert pairs == sorted([("remove common leading whitespace from lines", "textwrap.py:dedent"),
                            ("wrap a paragraph to a width", "textwrap.py:wrap"),
                            ("wrap a paragraph to a width", "textwrap.py:fill"),
                            ("split a command line into words", "shlex.py:split"),
                            ("quote a string for the shell", "shlex.py:quote"),
                            ("indent every line", "textwrap.py:indent"),
                            ("shorten text to fit", "textwrap.py:shorten"),
                            *(("fill text in a wrapper object", f"textwrap.py:{r['func_name']}") for r in
                              records if r["path"] == "textwrap.py" and r["docstring"].startswith("fill text"))])
    whole_file = [r for r in records if r["docstring"] == "fill text in a wrapper object"]
    assert len(whole_file) == len({r["func_name"] for r in whole_file}) > 10
    dedent = next(r for r in records if r["func_name"] == "dedent")
    assert dedent["code"] == dedent["original_string"] and dedent["code"].lstrip().startswith("def dedent(")
    assert report.skipped["voted item no longer in the index"] == 1
    assert report.extra["queries_with_only_down_votes"] == 1
    by_query = {}
    for r in records:
        by_query.setdefault(r["docstring"], set()).add(r["split"])
    assert all(len(splits) == 1 for splits in by_query.values())  # a query's pairs stay on one side


def test_the_corpus_holds_out_whole_queries_and_gives_them_back(voted_index, tmp_path):
    _, folder = voted_index
    name, report = training_corpus(f"feedback:{folder}", tmp_path / "data")
    written = {s: [json.loads(line) for line in open(tmp_path / "data" / "corpora" / name / f"{s}.jsonl")]
               for s in ("train", "valid", "test")}
    assert sum(map(len, written.values())) == len(feedback_records(folder)[0]) and report.pairs == {s: len(v) for s, v in written.items()}
    held_out = held_out_queries(name, tmp_path / "data")
    expected = {}
    for record in written["valid"] + written["test"]:
        expected.setdefault(record["docstring"], []).append(record["item"])
    assert {q.text: sorted(q.expected) for q in held_out} == {k: sorted(v) for k, v in expected.items()}
    trained = {r["docstring"] for r in written["train"]}
    assert trained and not trained & {q.text for q in held_out}


def test_no_votes_or_only_down_votes_say_what_to_do(voted_index, tmp_path):
    root, folder = voted_index
    empty = root / "indexes" / "unvoted"
    with pytest.raises(DataSpecError, match="no votes yet"):
        feedback_records(empty)
    down = tmp_path / "down"
    shutil.copytree(folder, down)
    FeedbackLog(feedback_path(down)).record("split words", "shlex.py:split", "down")
    with pytest.raises(DataSpecError, match="every feedback vote is down"):
        feedback_records(down)
    assert DataSpec.parse("feedback:proj") == DataSpec("feedback", Path("proj"))
