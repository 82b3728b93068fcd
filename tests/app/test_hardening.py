"""What a careless or hostile user could do to the app (issue 14), each reproduction a test, over HTTP and
``gradio_client`` against a server on 127.0.0.1 (ports 7900-7949): files beside the indexed images, huge
or broken uploads, uploads of any type, replacing an index, a corrupt index, an index built in another
session, a non-numeric ``k``, every route without login."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from mmssl.app import AppConfig, SearchService, launch
from mmssl.index import build_index, image_folder_items
from tests.data.test_imageio import write_blank_png
from tests.index.stub_model import StubModel
from tests.index.test_index_writes import make_images

STUB = "models/stub"  # StubModel.path: the service finds the stub under this model path


def port_in_range(low: int = 7900, high: int = 7949) -> int:
    for port in range(low, high + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 7900-7949")


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
    """An indexed folder as users really have them: images beside secrets, notes and sub-folders without images."""
    root = tmp_path_factory.mktemp("hostile")
    folder = root / "shared"
    make_images(folder)
    (folder / ".env").write_text("API_KEY=hunter2\n")
    (folder / "secret.txt").write_text("the password is swordfish\n")
    (folder / "captions.csv").write_text("file,caption\nred_truck.png,a red truck\n")
    (folder / "docs").mkdir()
    (folder / "docs" / "notes.md").write_text("private notes\n")
    (folder / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00")  # skipped by the scan
    (folder / "leak.png").symlink_to(folder / "secret.txt")  # an image name over a secret: not an item
    (root / "elsewhere").mkdir()
    Image.new("RGB", (16, 16), (0, 200, 0)).save(root / "elsewhere" / "green.png")
    (folder / "alias.png").symlink_to(root / "elsewhere" / "green.png")  # a linked image: an item
    items, source = image_folder_items(folder)
    build_index(root / "indexes" / "photos", StubModel(), items, source=source, progress=False)
    return folder


def _serve(shared: Path, **overrides):
    options = dict(host="127.0.0.1", port=port_in_range(), indexes=[str(shared.parent / "indexes" / "photos")],
                   image_model=STUB, code_model=str(shared.parent / "no-code-model"), auth="",
                   allow_folders=[str(shared), str(shared / "cats")])
    options.update(overrides)
    service = SearchService.load(AppConfig(**options), {STUB: StubModel()})
    return service, launch(service, block=False, quiet=True)


@pytest.fixture(scope="module")
def hostile_app(shared, tmp_path_factory):
    import os

    os.environ["MMSSL_INDEX_DIR"] = str(tmp_path_factory.mktemp("built-in-app"))
    service, demo = _serve(shared, max_upload_mb=1, upload_max_age=2)
    yield service, demo.local_url.rstrip("/")
    demo.close()
    del os.environ["MMSSL_INDEX_DIR"]


def test_only_indexed_items_are_served(hostile_app, shared):
    _, url = hostile_app
    get = lambda path: httpx.get(f"{url}/gradio_api/file={path}").status_code  # noqa: E731
    assert get(shared / "red_truck.png") == 200 and get(shared / "cats" / "tabby.png") == 200
    assert get(shared / "alias.png") == 200  # an indexed symlink, served as the item it is
    assert get(shared.parent / "elsewhere" / "green.png") == 200  # the same file, by its real path
    for path in (shared / ".env", shared / "secret.txt", shared / "captions.csv", shared / "docs" / "notes.md",
                 shared / "leak.png", shared / "cut.png", f"{shared}/cats/../secret.txt", shared / "missing.png",
                 shared.parent / "indexes" / "photos" / "meta.sqlite"):
        assert get(path) == 403, path
    assert httpx.get(f"{url}/file={shared / '.env'}").status_code in (403, 404)


def test_uploads_are_limited_in_type_and_size_and_cleaned(hostile_app, shared):
    _, url = hostile_app
    refused = httpx.post(f"{url}/gradio_api/upload", files={"files": ("payload.bin", b"\0" * 1000)})
    assert refused.status_code == 415 and "Only PNG, JPEG or WebP images" in refused.text and "payload.bin" in refused.text
    too_big = httpx.post(f"{url}/gradio_api/upload", files={"files": ("big.png", b"\0" * (2 << 20))})
    assert too_big.status_code == 413
    stored = httpx.post(f"{url}/gradio_api/upload", files={"files": ("mine.png", (shared / "red_truck.png").read_bytes())})
    assert stored.status_code == 200
    path = Path(stored.json()[0])
    assert path.is_file() and httpx.get(f"{url}/gradio_api/file={path}").status_code == 200  # the page's preview
    deadline = time.time() + 15
    while path.exists() and time.time() < deadline:
        time.sleep(0.5)
    assert not path.exists()  # upload_max_age=2 s


def test_replacing_needs_the_flag_and_the_servers_own_indexes_are_protected(hostile_app, shared):
    service, url = hostile_app
    client = Client(url, verbose=False)
    folder = str(shared)
    status = client.predict(folder, "image", "photos", True, api_name="/build_index")[0]
    assert "'photos' is the name of one of this server's own indexes, which cannot be replaced" in status
    status = client.predict(folder, "image", "emoji-clipart", True, api_name="/build_index")[0]
    assert "'emoji-clipart' is the name of one of this server's own indexes" in status
    status = client.predict(str(shared), "image", "mine", False, api_name="/build_index")[0]
    assert "Built **mine**: 5 image items" in status
    assert "Skipped 2 files" in status and "corrupt or truncated image" in status  # cut.png, leak.png
    status = client.predict(str(shared), "image", "mine", False, api_name="/build_index")[0]
    assert "There is already an index named 'mine'" in status
    status = client.predict(str(shared), "image", "mine", True, api_name="/build_index")[0]
    assert "Built **mine**" in status
    assert len(service.indexes["photos"].index) == 5  # untouched


def test_an_index_built_in_one_session_is_searchable_from_another_and_over_the_api(hostile_app, shared):
    service, url = hostile_app
    Client(url, verbose=False).predict(str(shared / "cats"), "image", "cats-only", True, api_name="/build_index")
    other = Client(url, verbose=False)  # a second session, started after the build
    gallery, status = other.predict("tabby", 2, "cats-only", "(all)", api_name="/search_images")
    assert "2 results" in status and all("/cats/" in item["image"] or item["image"] for item in gallery)
    assert {row[0] for row in other.predict(api_name="/indexes")["data"]} >= {"photos", "cats-only"}
    gallery, status = other.predict("tabby", 2, "no-such-index", "(all)", api_name="/search_images")
    assert gallery == [] and "There is no image index named 'no-such-index'" in status


@pytest.mark.parametrize("k", ["ten", "", None, [3]])
def test_a_non_numeric_k_gets_a_message(hostile_app, k):
    _, url = hostile_app
    gallery, status = Client(url, verbose=False).predict("truck", k, "photos", "(all)", api_name="/search_images")
    assert gallery == [] and "The number of results must be a whole number from 1 to 50" in status


def test_hostile_uploads_get_a_clear_message_and_cost_no_memory(running_app, tmp_path):
    client = Client(running_app, verbose=False)
    huge = write_blank_png(tmp_path / "huge.png", 11000, 11000)
    gallery, status = client.predict(handle_file(str(huge)), 3, "emoji", api_name="/search_by_image")
    assert gallery == [] and "image too large (11000×11000 = 121 Mpx; the limit is 40 Mpx)" in status
    assert str(tmp_path) not in status and status.rstrip().endswith("MMSSL_MAX_IMAGE_PIXELS.")  # whole, not cut
    (tmp_path / "cut.png").write_bytes(huge.read_bytes()[:5000])
    gallery, status = client.predict(handle_file(str(tmp_path / "cut.png")), 3, "emoji", api_name="/search_by_image")
    assert gallery == [] and "could not be read as an image" in status


def test_a_corrupt_index_is_reported_and_the_others_are_served(shared, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(shared.parent / "indexes" / "photos", broken)
    faiss_file = broken / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    service, demo = _serve(shared, indexes=[str(broken), str(shared.parent / "indexes" / "photos")])
    try:
        assert service.names("image") == ["photos"]
        assert f"{faiss_file} is corrupt" in service.problems["broken"]
        client = Client(demo.local_url, verbose=False)
        rows = {row[0]: row for row in client.predict(api_name="/indexes")["data"]}
        assert rows["photos"][-1] == "loaded" and "rebuild the index with `python -m mmssl index build broken" \
            in rows["broken"][-1]
        assert "4 results" in client.predict("truck", 4, "photos", "(all)", api_name="/search_images")[1]
    finally:
        demo.close()


def test_with_a_login_every_route_needs_it(shared):
    service, demo = _serve(shared, auth="alice:s3cret")
    url = demo.local_url.rstrip("/")
    image = shared / "red_truck.png"
    try:
        for path in ("/gradio_api/info", "/openapi.json", "/gradio_api/openapi.json", f"/gradio_api/file={image}",
                     "/gradio_api/queue/status", "/monitoring", "/gradio_api/app_id", "/docs", "/config"):
            assert httpx.get(url + path).status_code == 401, path
        assert httpx.post(url + "/gradio_api/upload", files={"files": ("a.png", image.read_bytes())}).status_code == 401
        with httpx.Client() as session:
            assert session.post(url + "/login", data={"username": "alice", "password": "s3cret"}).status_code == 200
            assert session.get(f"{url}/gradio_api/file={image}").status_code == 200
            assert session.get(f"{url}/gradio_api/file={shared / '.env'}").status_code == 403
        assert "1 result" in Client(url, auth=("alice", "s3cret"), verbose=False).predict(
            "truck", 1, "photos", "(all)", api_name="/search_images")[1]
    finally:
        demo.close()


def test_the_served_files_follow_builds_and_refreshes(tmp_path, monkeypatch):
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    paths = make_images(tmp_path / "pics")
    service = SearchService.load(AppConfig(indexes=[], image_model=STUB, allow_folders=[str(tmp_path / "pics")]),
                                 {STUB: StubModel()})
    assert service.servable_files() == frozenset()
    service.build_from_folder("pics", str(tmp_path / "pics"), "image", progress=False)
    assert service.servable_files() == frozenset(str(p) for p in paths.values())
    paths["red_truck"].unlink()
    assert "1 removed" in service.refresh("pics")
    assert str(paths["red_truck"]) not in service.servable_files() and len(service.servable_files()) == 3
