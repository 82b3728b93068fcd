"""Thumbs up/down saved per index as labelled pairs, read back as a queries file and evaluated; and the
page's vote buttons and Indexes-tab evaluation driven through ``gradio_client`` in one session."""

import json
import threading

import pytest
from gradio_client import Client

from mmssl.app.eval_view import bar_chart_html, eval_rows
from mmssl.app.feedback import FeedbackLog, feedback_path
from mmssl.app.search import UserError
from mmssl.cli import main
from mmssl.eval.user_queries import QueriesFileError, read_user_queries

SHELL = "split a string into shell words"


@pytest.fixture
def clean_feedback(service):
    """The session's indexes with no feedback files before and after the test."""
    paths = [feedback_path(loaded.index.folder) for loaded in service.indexes.values()]
    for path in paths:
        path.unlink(missing_ok=True)
    yield paths
    for path in paths:
        path.unlink(missing_ok=True)


def dense_rank(service, query, hit):
    """1-based rank of ``hit`` in the dense ranking of the whole index (asked for every item)."""
    everything = service.search_code(query, k=service.config.max_k, mode="dense").hits
    return 1 + [h.id for h in everything].index(hit.id)


def test_votes_round_trip_through_the_file_into_the_evaluation(service, clean_feedback, capsys):
    hits = service.search_code(SHELL, k=5, mode="dense").hits
    other = service.search_code("average of numbers", k=5, mode="dense").hits
    assert "👍" in service.record_feedback("stdlib", SHELL, hits[2], "up", kind="code")
    service.record_feedback("stdlib", SHELL, hits[0], "down", kind="code")
    note = service.record_feedback("stdlib", "average of numbers", other[1], "up", kind="code")
    assert "stdlib has 2 👍 and 1 👎 on 2 queries" in note
    path = service.feedback_log("stdlib").path
    assert path == service.indexes["stdlib"].index.folder.parent / "stdlib.feedback.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["query"], r["label"]) for r in lines] == [(SHELL, "up"), (SHELL, "down"), ("average of numbers", "up")]
    repo, rest = lines[0]["item"].split("/", 1)  # two packages in this index: the reference carries the package
    assert (repo, rest) == (hits[2].metadata["repo"], f"{hits[2].metadata['path']}:{hits[2].metadata['func_name']}")

    queries, _ = read_user_queries(path)
    assert [(q.text, len(q.expected)) for q in queries] == [(SHELL, 1), ("average of numbers", 1)]
    results = service.evaluate_own_queries("stdlib", baselines=False)
    ranks = [dense_rank(service, SHELL, hits[2]), dense_rank(service, "average of numbers", other[1])]
    assert ranks == [3, 2]  # the positions the votes were cast at
    model_row = results["rows"][0]
    assert model_row["ranks"] == ranks and model_row["mrr"] == pytest.approx((1 / ranks[0] + 1 / ranks[1]) / 2)

    assert main(["eval", "--index", str(service.indexes["stdlib"].index.folder), "--queries", str(path),
                 "--no-baselines", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["ranks"] == ranks


def test_image_votes_name_the_file_and_evaluate(service, clean_feedback):
    hits = service.search_images("grinning face", k=4).hits
    service.record_feedback("emoji", "grinning face", hits[1], "up")
    record = service.feedback_log("emoji").records()[0]
    assert record["item"] == hits[1].metadata["path"] and record["index"] == "emoji"
    results = service.evaluate_own_queries("emoji")
    rows = {row["system"]: row for row in results["rows"]}
    assert rows["model (clip-default)"]["ranks"] == [2] and "random (expected)" in rows and "BM25" in rows


def test_vote_errors_are_user_errors(service, clean_feedback):
    hit = service.search_code(SHELL, k=1).hits[0]
    with pytest.raises(UserError, match="Type what you are looking for"):
        service.record_feedback("stdlib", "  ", hit, "up", kind="code")
    with pytest.raises(UserError, match="Search, then choose"):
        service.record_feedback("stdlib", SHELL, None, "up", kind="code")
    with pytest.raises(UserError, match="'up' or 'down'"):
        service.record_feedback("stdlib", SHELL, hit, "meh", kind="code")
    with pytest.raises(UserError, match="no feedback yet"):
        service.evaluate_own_queries("stdlib")
    with pytest.raises(UserError, match="your queries:1: no tab"):
        service.evaluate_own_queries("stdlib", "no tab here")


def test_concurrent_votes_lose_nothing_and_a_torn_line_costs_only_itself(tmp_path):
    log = FeedbackLog(tmp_path / "x.feedback.jsonl")

    def vote(worker):
        for i in range(25):
            log.record(f"query {worker} {i}", f"f{worker}.py:g{i}", "up" if i % 3 else "down", index="x")

    threads = [threading.Thread(target=vote, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = log.records()
    assert len(records) == 200 and len({(r["query"], r["item"]) for r in records}) == 200
    with open(log.path, "ab") as f:
        f.write(b'{"query": "cut sh')  # a crash mid-write
    log.record("after the crash", "a.py:b", "up")
    assert len(log.records()) == 201 and log.records()[-1]["query"] == "after the crash"
    with pytest.raises(QueriesFileError, match=r"x.feedback.jsonl:201: not valid JSON"):
        read_user_queries(log.path)


def test_vote_in_the_page_then_evaluate_the_feedback(running_app, service, clean_feedback):
    client = Client(running_app, verbose=False)
    client.predict(SHELL, 5, "stdlib", "(all)", "", api_name="/search_code")
    expected = service.search_code(SHELL, k=5).hits
    status = client.predict("stdlib", SHELL, 1, api_name="/rate_code_up")
    assert "Saved 👍" in status and "stdlib has 1 👍 and 0 👎 on 1 queries" in status
    client.predict("stdlib", SHELL, 0, api_name="/rate_code_down")
    votes = [json.loads(line) for line in feedback_path(service.indexes["stdlib"].index.folder).read_text()
             .splitlines()]
    assert [(v["query"], v["label"]) for v in votes] == [(SHELL, "up"), (SHELL, "down")]
    assert votes[0]["item"].endswith(f"{expected[1].metadata['path']}:{expected[1].metadata['func_name']}")

    summary, table, chart = client.predict("stdlib", "", False, api_name="/evaluate_queries")
    results = service.evaluate_own_queries("stdlib", baselines=False)
    assert table["data"] == eval_rows(results) and chart == bar_chart_html(results)
    dense = [h.id for h in service.search_code(SHELL, k=service.config.max_k, mode="dense").hits]
    # the page ranked hybrid; the evaluation's model row is the dense ranking of the whole index
    assert "**stdlib**: 1 queries" in summary and results["rows"][0]["ranks"] == [1 + dense.index(expected[1].id)]


def test_an_image_result_is_rated_with_its_file(running_app, service, clean_feedback):
    client = Client(running_app, verbose=False)
    client.predict("grinning face", 4, "emoji", "(all)", api_name="/search_images")
    expected = service.search_images("grinning face", k=4).hits
    assert "Saved 👎" in client.predict("emoji", "grinning face", 2, api_name="/rate_image_down")
    assert "Search, then choose" in client.predict("emoji", "grinning face", 9, api_name="/rate_image_down")
    assert "Type what you are looking for" in client.predict("emoji", " ", 0, api_name="/rate_image_up")
    # no result chosen yet (the page's chooser fills in just after the results): the top result is rated
    assert "Saved 👍" in client.predict("emoji", "grinning face", None, api_name="/rate_image_up")
    votes = service.feedback_log("emoji").records()
    assert [(v["item"], v["label"]) for v in votes] == [(expected[2].metadata["path"], "down"),
                                                         (expected[0].metadata["path"], "up")]


def test_pasted_queries_give_the_table_and_chart(running_app, service):
    client = Client(running_app, verbose=False)
    hits = service.search_code(SHELL, k=3, mode="dense").hits
    refs = [service.item_reference("stdlib", h) for h in hits]
    lines = f"{SHELL}\t{refs[0]}\naverage of numbers\t{refs[2]};{refs[1]}\n"
    summary, table, chart = client.predict("stdlib", lines, True, api_name="/evaluate_queries")
    systems = [row[0] for row in table["data"]]
    assert systems == ["model (code-tiny)", "model (code-tiny) + BM25", "BM25", "MiniLM zero-shot",
                       "random (expected)"]
    assert chart.count("role=\"img\"") == 4 * len(systems) and "best baseline" in summary
    results = service.evaluate_own_queries("stdlib", lines)
    assert table["data"] == eval_rows(results) and results["rows"][0]["ranks"][0] == 1  # refs[0] is the top hit
    bad = client.predict("stdlib", "no tab on this line", True, api_name="/evaluate_queries")
    assert "your queries:1: no tab" in bad[0]
    missing = client.predict("stdlib", f"{SHELL}\tnowhere.py:f", True, api_name="/evaluate_queries")
    assert "1 expected item(s) are not in stdlib" in missing[0] and "nowhere.py:f" in missing[0]
