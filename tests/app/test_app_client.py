"""The app served on 127.0.0.1 and driven through ``gradio_client``, as an API user would: every endpoint
returns ranked results equal to the library's, bad inputs come back as friendly messages, and only
files of the indexed image folders are served."""

from __future__ import annotations

import re

import httpx
import pytest
from gradio_client import Client, handle_file

from mmssl.app import launch
from mmssl.app.cards import image_caption


@pytest.fixture(scope="module")
def client(running_app):
    return Client(running_app, verbose=False)


def _captions(gallery) -> list[str]:
    return [item["caption"] for item in gallery]


def test_text_to_image_endpoint_is_ranked_like_the_library(client, service):
    gallery, status = client.predict("grinning face", 8, "emoji", "(all)", False, api_name="/search_images")
    expected = service.search_images("grinning face", k=8, collapse=False).hits  # near-duplicates: test_dedup_page
    assert _captions(gallery) == [image_caption(h) for h in expected]
    scores = [float(c.rsplit("·", 1)[1]) for c in _captions(gallery)]
    assert scores == sorted(scores, reverse=True)
    assert re.fullmatch(r"\*\*8 results\*\* in \d+ ms", status)
    assert all(item["image"].endswith(".png") for item in gallery)  # downloaded by the client


def test_image_to_image_endpoint_finds_the_image_itself(client, app_root):
    target = sorted(app_root["images"].iterdir())[3]
    gallery, status = client.predict(handle_file(str(target)), 4, "emoji", api_name="/search_by_image")
    assert len(gallery) == 4 and "4 results" in status
    assert gallery[0]["caption"].endswith("· 1.000")
    assert open(gallery[0]["image"], "rb").read() == target.read_bytes()


def test_code_endpoint_returns_highlighted_cards_in_rank_order(client, service):
    status, cards = client.predict("split a string into shell words", 5, "stdlib", "(all)", "",
                                   api_name="/search_code")
    expected = service.search_code("split a string into shell words", k=5).hits
    names = [re.sub(r"</?mark>", "", n) for n in re.findall(r"<span class='mmssl-func'>(.*?)</span>", cards)]
    assert names == [h.metadata["func_name"] for h in expected] and "5 results" in status
    assert "<mark>split</mark>" in cards and "dense " in cards and "lexical " in cards  # why it matched
    assert all(h.metadata["url"] in cards for h in expected)  # path:line
    assert "style=\"color:" in cards  # Pygments' inline colours
    status, cards = client.predict("average of numbers", 3, "stdlib", "numkit", "", api_name="/search_code")
    assert cards.count("mmssl-card'") == 3 and "textkit" not in cards and "numkit" in cards


def test_indexes_endpoint_lists_what_is_loaded(client):
    table = client.predict(api_name="/indexes")
    rows = {row[0]: row for row in table["data"]}
    assert rows["emoji"][1] == "image" and rows["stdlib"][1] == "code" and rows["stdlib"][2] > 20


@pytest.mark.parametrize("query, expected", [
    ("", "Type what you are looking for"),
    ("   \t  ", "Type what you are looking for"),
    ("fire " * 2000, "the search used its first 1,000"),
])
def test_bad_queries_give_a_friendly_message(client, query, expected):
    gallery, status = client.predict(query, 5, "emoji", "(all)", api_name="/search_images")
    assert expected in status and "Traceback" not in status
    status, _ = client.predict(query, 5, "stdlib", "(all)", "", api_name="/search_code")
    assert expected in status


def test_non_latin_queries_return_results(client):
    for query in ("笑顔", "собака", "😀"):
        gallery, status = client.predict(query, 3, "emoji", "(all)", api_name="/search_images")
        assert len(gallery) == 3 and "3 results" in status


def test_bad_uploads_give_a_friendly_message(client, tmp_path):
    (tmp_path / "notes.png").write_text("this is not an image")
    (tmp_path / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00")
    for name in ("notes.png", "cut.png"):
        gallery, status = client.predict(handle_file(str(tmp_path / name)), 3, "emoji", api_name="/search_by_image")
        assert gallery == [] and "could not be read as an image" in status and str(tmp_path) not in status


def test_only_indexed_image_folders_are_served(running_app, app_root):
    image = sorted(app_root["images"].iterdir())[0]
    base = running_app.rstrip("/") + "/gradio_api/file="
    assert httpx.get(base + str(image)).status_code == 200
    for path in ("/etc/passwd", str(app_root["indexes"] / "emoji" / "meta.sqlite"),
                 f"{app_root['images']}/../../../indexes/emoji/manifest.json", str(app_root["code_model"] / "config.json"),
                 str(app_root["projects"]["textkit"] / "shlex.py")):
        assert httpx.get(base + path).status_code == 403, path


def test_login_and_missing_code_index(app_config, app_root, load_service):
    service = load_service(app_config(indexes=[str(app_root["indexes"] / "emoji")], auth="alice:s3cret"))
    demo = launch(service, block=False, quiet=True)
    try:
        assert httpx.get(demo.local_url.rstrip("/") + "/config").status_code in (401, 403)
        with pytest.raises(Exception):
            Client(demo.local_url, verbose=False)
        client = Client(demo.local_url, auth=("alice", "s3cret"), verbose=False)
        status, cards = client.predict("parse json", 3, None, "(all)", "", api_name="/search_code")
        assert "No code index is loaded" in status and cards == ""
    finally:
        demo.close()
