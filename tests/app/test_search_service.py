"""``SearchService`` without Gradio: rankings equal a brute-force reference, filters, friendly errors,
and the folder checks that keep request values away from the file system."""

from __future__ import annotations

import numpy as np
import pytest

from mmssl.app import UserError, clean_query, parse_auth
from mmssl.app.search import MAX_QUERY_CHARS, is_inside
from mmssl.cli import build_parser


def _brute_force_images(service, query: str, k: int):
    """Top-k (ids, scores) of the image index by re-embedding every stored image."""
    loaded = service.get(None, "image")
    rows = loaded.index.store.live_rows()
    items = loaded.model.encode_image([r.path for r in rows])  # (N, E)
    scores = items @ loaded.model.encode_text([query])[0]  # (N,)
    order = np.argsort(-scores, kind="stable")[:k]
    return [rows[i].id for i in order], scores[order]


def test_text_to_image_equals_brute_force(service):
    result = service.search_images("grinning face", k=8)
    ids, scores = _brute_force_images(service, "grinning face", 8)
    assert [h.id for h in result.hits] == ids
    np.testing.assert_allclose([h.score for h in result.hits], scores, atol=1e-5)
    assert result.seconds > 0 and result.note == ""
    assert all(h.metadata["caption"] and h.metadata["path"].endswith(".png") for h in result.hits)


def test_image_to_image_finds_itself_first(service, app_root):
    target = sorted(app_root["images"].iterdir())[5]
    result = service.search_by_image(str(target), k=5)
    assert result.hits[0].metadata["path"] == str(target) and result.hits[0].score == pytest.approx(1.0, abs=1e-4)
    clicked = service.search_like_hit(result.hits[0], k=5)  # "click a result": the item itself is left out
    assert str(target) not in [h.metadata["path"] for h in clicked.hits] and len(clicked.hits) == 5
    assert [h.id for h in clicked.hits] == [h.id for h in result.hits[1:5]] + [clicked.hits[4].id]


def test_code_search_ranks_and_filters_by_package_and_module(service):
    everything = service.search_code("split a string into shell words", k=50)
    scores = [h.score for h in everything.hits]
    assert scores == sorted(scores, reverse=True) and len(everything.hits) == 50
    assert {h.metadata["repo"] for h in everything.hits} == {"textkit", "numkit"}
    only = service.search_code("split a string into shell words", k=10, package="numkit")
    assert only.hits and {h.metadata["repo"] for h in only.hits} == {"numkit"}
    # dense: a filter keeps the order of the unfiltered ranking (hybrid's min-max fusion normalises per filter)
    dense_all = service.search_code("split a string into shell words", k=50, mode="dense").hits
    dense_only = service.search_code("split a string into shell words", k=10, package="numkit", mode="dense").hits
    assert [h.id for h in dense_only] == [h.id for h in dense_all if h.metadata["repo"] == "numkit"][:10]
    shlex_only = service.search_code("split a string into shell words", k=5, module="shlex")
    assert shlex_only.hits and all(h.metadata["module"] == "shlex" for h in shlex_only.hits)
    assert service.packages() == ["numkit", "textkit"]
    hit = only.hits[0].metadata
    assert hit["func_name"] and hit["signature"].startswith("def ") and hit["url"] == f"{hit['path']}:{hit['line']}"


@pytest.mark.parametrize("query", ["", "   \n\t ", None])
def test_empty_queries_are_a_friendly_error(service, query):
    with pytest.raises(UserError, match="Type what you are looking for"):
        service.search_images(query)
    with pytest.raises(UserError, match="Type what you are looking for"):
        service.search_code(query)


def test_long_and_non_latin_queries(service):
    query, note = clean_query("cat." * 2500)
    assert len(query) == MAX_QUERY_CHARS and "10,000 characters" in note
    result = service.search_images("cat " * 2500, k=3)
    assert len(result.hits) == 3 and "first 1,000" in result.note
    for text in ("笑っている顔", "улыбающееся лицо", "🙂", "وجه مبتسم"):
        assert len(service.search_images(text, k=3).hits) == 3
    assert clean_query("a\x00b\u200bc\nd") == ("a b c d", "")


def test_bad_uploads_are_friendly(service, tmp_path):
    for name, data in (("notes.png", b"not an image at all"), ("empty.jpg", b""),
                       ("cut.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UserError, match="could not be read as an image"):
            service.search_by_image(str(tmp_path / name))
    with pytest.raises(UserError, match="Upload an image"):
        service.search_by_image(None)


def test_unknown_and_missing_indexes(app_root, app_config, tmp_path, load_service):
    service = load_service(app_config(indexes=[str(tmp_path / "nothing-here")]))
    assert "nothing-here" in service.problems and "index build" in service.problems["nothing-here"]
    with pytest.raises(UserError, match="No image index is loaded"):
        service.search_images("cat")
    with pytest.raises(UserError, match="No code index is loaded"):
        service.search_code("parse json")
    no_model = load_service(app_config(indexes=[str(app_root["indexes"] / "stdlib")],
                                             code_model=str(tmp_path / "no-model")))
    assert "No code model" in no_model.problems["stdlib"]


def test_clicked_hit_outside_the_indexed_folders_is_refused(service):
    hit = service.search_images("cat", k=1).hits[0]
    hit.metadata = {**hit.metadata, "path": "/etc/passwd"}
    with pytest.raises(UserError, match="not part of a loaded image index"):
        service.search_like_hit(hit)


def test_building_only_from_allowed_folders(app_root, app_config, tmp_path, monkeypatch, load_service):
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    allowed = tmp_path / "allowed"
    (allowed / "photos").mkdir(parents=True)
    sibling = tmp_path / "allowed-not"
    sibling.mkdir()
    for i, path in enumerate(sorted(app_root["images"].iterdir())[:6]):
        (allowed / "photos" / f"p{i}.png").write_bytes(path.read_bytes())
    (allowed / "link").symlink_to(tmp_path / "allowed-not")
    service = load_service(app_config(indexes=[], allow_folders=[str(allowed)]))
    for folder in ("/etc", str(sibling), str(allowed / ".." / "allowed-not"), str(allowed / "link"), "", None):
        with pytest.raises(UserError, match="not a folder the operator allows|Choose one of the folders"):
            service.build_from_folder("mine", folder, "image")
    with pytest.raises(UserError, match="Index names"):
        service.build_from_folder("../escape", str(allowed), "image")
    loaded = service.build_from_folder("mine", str(allowed / "photos"), "image", progress=False)
    assert loaded.index.manifest.count == 6 and service.names("image") == ["mine"]
    assert service.image_folders() == [str((allowed / "photos").resolve())]
    (allowed / "photos" / "p0.png").unlink()
    assert "1 removed" in service.refresh("mine")
    closed = load_service(app_config(indexes=[]))
    with pytest.raises(UserError, match="Building from the app is off"):
        closed.build_from_folder("mine", str(allowed), "image")


def test_is_inside():
    assert is_inside("/a/b/c", ["/a/b"]) and is_inside("/a/b", ["/a/b"])
    assert not is_inside("/a/bc", ["/a/b"]) and not is_inside("/a/b/../x", ["/a/b"])


def test_auth_and_serve_options(monkeypatch):
    assert parse_auth("alice:s3:cret") == ("alice", "s3:cret") and parse_auth("") is None
    for bad in ("alice", ":pw", "alice:"):
        with pytest.raises(ValueError, match="user:password"):
            parse_auth(bad)
    args = build_parser().parse_args(["serve", "--index", "a", "--index", "b", "--auth", "u:p",
                                      "--allow-folder", "/tmp"])
    assert args.index == ["a", "b"] and args.auth == "u:p" and not args.share and args.host == "127.0.0.1"
    monkeypatch.setenv("MMSSL_AUTH", "bob:pw")
    from mmssl.app import AppConfig

    assert AppConfig().credentials() == ("bob", "pw") and AppConfig(auth="").credentials() is None
