"""The REST API beside the page (mmssl.app.api), over HTTP with httpx against servers on 127.0.0.1 (ports
7950-7969): each route answers what the service answers, bad input is a 4xx JSON message, and with a login
every route (API and page) needs it, as HTTP Basic or the page's cookie."""

from __future__ import annotations

import httpx
import pytest

from mmssl.app import launch
from tests.app.test_hardening import port_in_range
from tests.data.test_imageio import write_blank_png

LOGIN = ("alice", "s3cret")


@pytest.fixture(scope="module")
def api(app_config, load_service):
    """``(service, base URL)`` of an app without login."""
    service = load_service(app_config(port=port_in_range(7950, 7969)))
    demo = launch(service, block=False, quiet=True)
    yield service, demo.local_url.rstrip("/")
    demo.close()


@pytest.fixture(scope="module")
def locked_api(app_config, load_service):
    """``(service, base URL)`` of an app with a login and a 1 MB upload limit."""
    service = load_service(app_config(port=port_in_range(7950, 7969), auth=":".join(LOGIN), max_upload_mb=1))
    demo = launch(service, block=False, quiet=True)
    yield service, demo.local_url.rstrip("/")
    demo.close()


def test_indexes_lists_what_is_loaded(api):
    service, url = api
    reply = httpx.get(f"{url}/api/indexes")
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    rows = {row["index"]: row for row in reply.json()["indexes"]}
    assert rows["emoji"]["kind"] == "image" and rows["stdlib"]["kind"] == "code"
    assert rows["stdlib"]["items"] == service.indexes["stdlib"].index.manifest.count > 20


def test_text_to_image_is_ranked_like_the_service_and_its_images_are_served(api):
    service, url = api
    reply = httpx.get(f"{url}/api/search", params={"index": "emoji", "q": "grinning face", "k": 6}).json()
    expected = service.search_images("grinning face", k=6, index="emoji").hits
    assert [h["id"] for h in reply["hits"]] == [h.id for h in expected] and reply["query"] == "grinning face"
    assert [h["score"] for h in reply["hits"]] == pytest.approx([h.score for h in expected], abs=1e-6)
    assert [h["rank"] for h in reply["hits"]] == [1, 2, 3, 4, 5, 6] and reply["kind"] == "image"
    first = reply["hits"][0]
    assert first["caption"] == expected[0].metadata["caption"]
    image = httpx.get(url + first["image_url"])
    assert image.status_code == 200 and image.content == open(first["path"], "rb").read()


def test_code_search_takes_the_code_filters(api):
    service, url = api
    params = {"index": "stdlib", "q": "split a string into shell words", "k": 5, "package": "textkit",
              "kind": "function", "exclude_tests": "true", "mode": "dense"}
    reply = httpx.get(f"{url}/api/search", params=params).json()
    expected = service.search_code("split a string into shell words", 5, "stdlib", "textkit", kind="function",
                                   exclude_tests=True, mode="dense").hits
    assert [h["func_name"] for h in reply["hits"]] == [h.metadata["func_name"] for h in expected]
    assert len(reply["hits"]) == 5 and {h["repo"] for h in reply["hits"]} == {"textkit"}
    assert all("." not in h["func_name"] for h in reply["hits"])  # functions, no Class.method
    assert all(h["dense"] == pytest.approx(h["score"]) for h in reply["hits"])
    globbed = httpx.get(f"{url}/api/search", params={"index": "stdlib", "q": "split words", "path": "shlex*"}).json()
    assert globbed["hits"] and {h["path"] for h in globbed["hits"]} == {"shlex.py"}


def test_image_upload_finds_the_image_itself(api, app_root):
    _, url = api
    target = sorted(app_root["images"].iterdir())[4]
    reply = httpx.post(f"{url}/api/search", data={"index": "emoji", "k": "3"},
                       files={"image": (target.name, target.read_bytes(), "image/png")})
    assert reply.status_code == 200, reply.text
    hits = reply.json()["hits"]
    assert len(hits) == 3 and hits[0]["path"] == str(target) and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("params, status, message", [
    ({"index": "nope", "q": "cat"}, 404, "There is no index named 'nope'; choose one of: emoji, stdlib"),
    ({"q": "cat"}, 400, "Name the index to search"),
    ({"index": "emoji", "q": "cat", "k": "ten"}, 400, "k must be a whole number from 1 to 50 (got 'ten')"),
    ({"index": "emoji", "q": "cat", "k": "0"}, 400, "k must be a whole number"),
    ({"index": "emoji", "q": "cat", "k": "51"}, 400, "k must be a whole number"),
    ({"index": "emoji", "q": "   "}, 400, "Type what you are looking for"),
    ({"index": "stdlib", "q": "parse", "kind": "class"}, 400, "function"),
    ({"index": "stdlib", "q": "parse", "mode": "fuzzy"}, 400, "The ranking must be one of"),
    ({"index": "stdlib", "q": "parse", "exclude_tests": "maybe"}, 400, "exclude_tests is true or false"),
])
def test_bad_searches_are_4xx_json(api, params, status, message):
    _, url = api
    reply = httpx.get(f"{url}/api/search", params=params)
    assert reply.status_code == status and message in reply.json()["error"], reply.text
    assert "Traceback" not in reply.text


def test_bad_uploads_are_4xx_json(api, tmp_path):
    _, url = api

    def post(files, data=None):
        return httpx.post(f"{url}/api/search", data=data or {"index": "emoji"}, files=files)

    cases = [
        (post({"image": ("notes.png", b"not an image at all", "image/png")}), 415, "could not be read as an image"),
        (post({"image": ("notes.txt", b"hello", "text/plain")}), 415, "Only PNG, JPEG or WebP images"),
        (post({"photo": ("a.png", b"x", "image/png")}), 400, "file field named 'image'"),
        (post({"image": ("a.png", b"x", "image/png")}, {"index": "stdlib"}), 400, "stdlib is a code index"),
        (httpx.post(f"{url}/api/search", json={"index": "emoji"}), 400, "multipart/form-data"),
        (httpx.get(f"{url}/api/nothing-here"), 404, "No API route /api/nothing-here"),
    ]
    for reply, status, message in cases:
        assert reply.status_code == status and message in reply.json()["error"], reply.text
    huge = write_blank_png(tmp_path / "huge.png", 11000, 11000)  # a few hundred KB, 121 Mpx declared
    reply = post({"image": ("huge.png", huge.read_bytes(), "image/png")})
    assert reply.status_code == 415 and "image too large (11000×11000" in reply.json()["error"] and str(tmp_path) not in reply.text


def test_with_a_login_every_route_needs_it(locked_api, app_root):
    _, url = locked_api
    image = sorted(app_root["images"].iterdir())[0]
    upload = {"image": (image.name, image.read_bytes(), "image/png")}
    for reply in (httpx.get(f"{url}/api/indexes"), httpx.get(f"{url}/api/search", params={"index": "emoji", "q": "x"}),
                  httpx.post(f"{url}/api/search", data={"index": "emoji"}, files=upload),
                  httpx.get(f"{url}/api/nothing-here"), httpx.get(f"{url}/api/indexes", auth=("alice", "wrong")),
                  httpx.get(f"{url}/api/indexes", auth=("bob", "s3cret")),
                  httpx.get(f"{url}/api/indexes", headers={"Authorization": "Basic !!not-base64"})):
        assert reply.status_code == 401 and "Log in first" in reply.json()["error"], reply.request.url
        assert reply.headers["www-authenticate"] == 'Basic realm="mmssl"'
    for path in ("/config", "/gradio_api/info", f"/gradio_api/file={image}", "/docs", "/openapi.json"):
        assert httpx.get(url + path).status_code == 401, path
    assert httpx.get(f"{url}/api/indexes", auth=LOGIN).status_code == 200
    reply = httpx.post(f"{url}/api/search", data={"index": "emoji", "k": "2"}, files=upload, auth=LOGIN)
    assert reply.status_code == 200 and reply.json()["hits"][0]["path"] == str(image)
    with httpx.Client() as session:  # the page's login cookie opens the API too
        assert session.post(f"{url}/login", data={"username": "alice", "password": "s3cret"}).status_code == 200
        assert session.get(f"{url}/api/search", params={"index": "emoji", "q": "cat", "k": 2}).status_code == 200


def test_uploads_above_the_limit_are_413(locked_api):
    _, url = locked_api
    big = b"\x89PNG" + bytes(1024 * 1024 + 100 * 1024)  # over the 1 MB limit
    reply = httpx.post(f"{url}/api/search", data={"index": "emoji"}, files={"image": ("big.png", big, "image/png")},
                       auth=LOGIN)
    assert reply.status_code == 413 and "larger than this server accepts (1 MB)" in reply.json()["error"]

    def chunks():  # no Content-Length: the body is counted as it arrives
        boundary = b"--mmssl\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.png\"\r\n\r\n"
        yield boundary
        for _ in range(12):
            yield bytes(100 * 1024)
        yield b"\r\n--mmssl--\r\n"

    reply = httpx.post(f"{url}/api/search", content=chunks(), auth=LOGIN,
                       headers={"content-type": "multipart/form-data; boundary=mmssl"})
    assert reply.status_code == 413


def test_query_arithmetic_and_image_modifiers(api, app_root):
    service, url = api
    reply = httpx.get(f"{url}/api/search", params={"index": "emoji", "q": "2:cat + hat", "k": 5}).json()
    assert [h["id"] for h in reply["hits"]] == [h.id for h in service.search_images("2:cat + hat", k=5).hits]
    assert reply["note"] == "Searched for + 2×cat + hat."
    image = sorted(app_root["images"].iterdir())[9]
    upload = {"image": (image.name, image.read_bytes(), "image/png")}
    reply = httpx.post(f"{url}/api/search", data={"index": "emoji", "k": "4", "q": "-2:face"}, files=upload).json()
    expected = service.search_by_image(str(image), 4, modifier="-2:face").hits
    assert [h["id"] for h in reply["hits"]] == [h.id for h in expected] and reply["query"] == "-2:face"
    for params in ({"index": "emoji", "q": "-people"}, {"index": "emoji", "q": "beach -"}):
        reply = httpx.get(f"{url}/api/search", params=params)
        assert reply.status_code == 400 and ("only subtracts" in reply.text or "no term after it" in reply.text)
    reply = httpx.post(f"{url}/api/search", data={"index": "emoji", "q": "red +"}, files=upload)
    assert reply.status_code == 400 and "no term after it" in reply.json()["error"]
