"""A queries file uploaded to the Indexes tab's evaluation: small UTF-8 .tsv/.jsonl files pass the upload
guard and evaluate as if pasted; a file too big, not UTF-8, or of another type is refused with a message
that says why, and deleted."""

import json

import httpx
import pytest
from gradio_client import Client, handle_file

from mmssl.app.eval_view import eval_rows
from mmssl.app.guard import MAX_QUERIES_FILE_BYTES, gradio_temp_folders
from mmssl.app.search import UserError

SHELL = "split a string into shell words"


def queries_text(service) -> str:
    hits = service.search_code(SHELL, k=3, mode="dense").hits
    refs = [service.item_reference("stdlib", h) for h in hits]
    return f"{SHELL}\t{refs[0]}\naverage of numbers\t{refs[2]};{refs[1]}\n"


def stored_names():
    from pathlib import Path

    return {p.name for folder in gradio_temp_folders() for p in Path(folder).rglob("*") if p.is_file()}


def test_an_uploaded_file_evaluates_as_if_pasted(running_app, service, tmp_path):
    text = queries_text(service)
    tsv = tmp_path / "my-queries.tsv"
    tsv.write_text(text, encoding="utf-8")
    client = Client(running_app, verbose=False)
    summary, table, chart = client.predict("stdlib", "", False, handle_file(str(tsv)), api_name="/evaluate_queries")
    assert table["data"] == eval_rows(service.evaluate_own_queries("stdlib", text, baselines=False))
    assert "**stdlib**: 2 queries" in summary
    jsonl = tmp_path / "my-queries.jsonl"
    jsonl.write_text("\n".join(json.dumps({"query": q, "expected": e.split(";")})
                               for q, e in (line.split("\t") for line in text.splitlines())), encoding="utf-8")
    _, from_jsonl, _ = client.predict("stdlib", "", False, handle_file(str(jsonl)), api_name="/evaluate_queries")
    assert from_jsonl["data"] == table["data"]
    both = client.predict("stdlib", text, False, handle_file(str(tsv)), api_name="/evaluate_queries")
    assert "not both" in both[0]


@pytest.mark.parametrize("name, content, status, message", [
    ("huge.tsv", b"q\tshlex.py:split\n" * (MAX_QUERIES_FILE_BYTES // 16 + 1), 413, "may be at most 1.0 MB"),
    ("latin1.tsv", "café au lait\tshlex.py:split\n".encode("latin-1"), 415, "not UTF-8 text"),
    ("queries.csv", b"q,shlex.py:split\n", 415, "a .tsv / .jsonl queries file"),
])
def test_a_bad_queries_upload_is_refused_and_deleted(running_app, name, content, status, message):
    refused = httpx.post(f"{running_app.rstrip('/')}/gradio_api/upload", files={"files": (name, content)})
    assert refused.status_code == status and message in refused.text and name in refused.text
    assert name not in stored_names()


def test_the_service_reads_an_upload_only_if_it_is_a_small_utf8_queries_file(service, tmp_path):
    good = tmp_path / "q.tsv"
    good.write_text("naïve query\tshlex.py:split\n", encoding="utf-8")
    assert service.queries_upload_text(str(good)) == "naïve query\tshlex.py:split\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"query": "\xff"}\n')
    with pytest.raises(UserError, match="bad.jsonl is not UTF-8 text"):
        service.queries_upload_text(str(bad))
    with pytest.raises(UserError, match="could not be read"):
        service.queries_upload_text(str(tmp_path / "gone.tsv"))
