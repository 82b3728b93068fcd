"""The page's feedback buttons and the Indexes tab's evaluation, driven through ``gradio_client`` in one
session (the votes pair the session's last text search with one of its results)."""

import json

import pytest
from gradio_client import Client

from mmssl.app.eval_view import bar_chart_html, eval_rows
from mmssl.app.feedback import feedback_path

SHELL = "split a string into shell words"


@pytest.fixture
def clean_feedback(service):
    paths = [feedback_path(loaded.index.folder) for loaded in service.indexes.values()]
    for path in paths:
        path.unlink(missing_ok=True)
    yield
    for path in paths:
        path.unlink(missing_ok=True)


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
    votes = service.feedback_log("emoji").records()
    assert [(v["item"], v["label"]) for v in votes] == [(expected[2].metadata["path"], "down")]


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
