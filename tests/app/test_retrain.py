"""The Indexes tab's Retrain button through ``gradio_client``: a code index's 👍 votes fine-tune its model in a
background job with step progress, the same items are indexed with the new model under a new name, and
old and new are compared on the voted queries held out of training; the old model and index stay, and
switching is the user's click. With building off the service says how to turn it on."""

import hashlib
import json
import time

import pytest
from gradio_client import Client
from own_data import stdlib_project
from tiny_models import save_tiny_code_model

from mmssl.app import launch
from mmssl.app.feedback import FeedbackLog, feedback_path
from mmssl.app.search import UserError
from mmssl.data.code import first_paragraph
from mmssl.index import build_index, code_folder_items
from mmssl.index.feedback_pairs import held_out_queries
from mmssl.index.user_eval import evaluate_index_queries
from mmssl.model import load_model

MODULES = ("textwrap", "shlex", "posixpath", "base64", "calendar", "fnmatch")


def digest(folder):
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def voted_code_index(tmp_path, monkeypatch):
    """A project's code index (tiny model) with a 👍 per documented function: its first docstring line."""
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    monkeypatch.setenv("MMSSL_DATA_DIR", str(tmp_path / "data"))
    project = stdlib_project(tmp_path / "proj", MODULES)
    start = save_tiny_code_model(tmp_path / "models" / "code-tiny")
    items, source = code_folder_items(project)
    index = build_index("proj", load_model(start, device="cpu"), items, source=source, progress=False)
    log = FeedbackLog(feedback_path(index.folder))
    voted = set()
    for row in index.store.live_rows():
        query = first_paragraph(row.metadata.get("docstring") or "").split(".")[0]
        if len(query.split()) >= 3 and query not in voted:
            voted.add(query)
            log.record(query, f"{row.path}:{row.metadata['func_name']}", "up", index="proj")
    index.close()
    return {"project": project, "start": start, "folder": tmp_path / "indexes" / "proj", "votes": len(voted)}


def test_retrain_from_the_page_builds_a_new_index_and_compares(voted_code_index, app_config, load_service):
    data = voted_code_index
    assert data["votes"] >= 40
    before = digest(data["start"]), digest(data["folder"])
    service = load_service(app_config(indexes=[str(data["folder"])], code_model=str(data["start"]),
                                      allow_folders=[str(data["project"])]))
    demo = launch(service, block=False, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        status, _ = client.predict("proj", "proj-v2", 30, api_name="/retrain")
        assert "Retraining **proj** into **proj-v2**" in status
        with pytest.raises(UserError, match="already running"):
            service.start_retrain("proj", "proj-v3", 5)
        seen, deadline = [], time.monotonic() + 300
        while time.monotonic() < deadline:
            status, progress, table, chart, *_ = client.predict(api_name="/retrain_progress")
            seen.append(progress["data"][0][3] if progress["data"] else "")
            if "is ready" in status or "failed" in status:
                break
            time.sleep(1)
        assert "is ready" in status, status
        assert any(" / 30" in line and "steps/s" in line for line in seen), seen  # step progress with a rate
        rows = table["data"]
        assert [row[0] for row in rows] == ["before: code-tiny on proj", "after: code-tiny-proj-v2 on proj-v2"]
        retrain = service.latest_retrain()
        held_out = retrain.comparison["num_queries"]
        assert held_out == retrain.held_out >= 8 and "held out of training" in status
        # the page shows what an evaluation of each index on the held-out votes gives (whether 30 gentle steps
        # help a tiny model is not this test's question: tests/recipes/test_finetune_feedback.py measures that)
        queries = held_out_queries(retrain.corpus)
        for row, name in zip(rows, ("proj", "proj-v2")):
            loaded = service.indexes[name]
            expected = evaluate_index_queries(loaded.index, loaded.model, queries, baselines=False)["rows"][0]
            assert row[1:5] == [round(expected[k], 3) for k in ("mrr", "recall@1", "recall@5", "recall@10")]
        print(f"retrain from the page: {held_out} held-out voted queries, MRR {rows[0][1]} -> {rows[1][1]}")
        assert "eval-chart" in chart and "after: code-tiny-proj-v2" in chart
        # the new index answers with its own model; the old ones are as they were
        assert service.names("code") == ["proj", "proj-v2"]
        new = service.indexes["proj-v2"]
        assert str(new.model.path) == str(data["start"].parent / "code-tiny-proj-v2")
        assert new.index.manifest.count == service.indexes["proj"].index.manifest.count
        assert service.search_code("split a string into shell words", k=3, index="proj-v2").hits
        assert (digest(data["start"]), digest(data["folder"])) == before
        manifest = json.loads((data["start"].parent / "code-tiny-proj-v2" / "manifest.json").read_text())
        assert manifest["started_from"] == str(data["start"].resolve()) and manifest["steps"] == 30
        image_choice, code_choice = client.predict(api_name="/switch_to_retrained")
        assert code_choice["value"] == "proj-v2" and image_choice == {"__type__": "update"}  # the Code tab switches
        with pytest.raises(UserError, match="already an index named 'proj-v2'"):
            service.start_retrain("proj", "proj-v2", 5)
    finally:
        demo.close()


def test_retrain_is_off_without_building_and_needs_votes(voted_code_index, app_config, load_service, tmp_path):
    data = voted_code_index
    closed = load_service(app_config(indexes=[str(data["folder"])], code_model=str(data["start"])))
    with pytest.raises(UserError, match="Retraining from the app is off.*--allow-folder.*--data feedback:INDEX"):
        closed.start_retrain("proj", "proj-v2", 5)
    feedback_path(data["folder"]).unlink()
    service = load_service(app_config(indexes=[str(data["folder"])], code_model=str(data["start"]),
                                      allow_folders=[str(data["project"])]))
    with pytest.raises(UserError, match="no 👍 votes yet"):
        service.start_retrain("proj", "proj-v2", 5)
    for steps in (0, "many", 10_000):
        with pytest.raises(UserError, match="whole number from 1 to"):
            service.start_retrain("proj", "proj-v2", steps)
