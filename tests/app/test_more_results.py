"""Near-duplicates folded and "more results" in the service, the REST API and the page's API, on the
session's emoji index (30 base emoji with their skin-tone variants) and stdlib code index."""

from __future__ import annotations

import httpx
import pytest

from mmssl.app import UserError
from mmssl.index.dedup import concept_key
from tests.app import test_api

api = test_api.api  # the fixture: an app without login on 127.0.0.1:7950-7969


def _keys(hits) -> list:
    return [concept_key(h.metadata) for h in hits]


def test_folded_hits_are_the_first_of_each_concept_in_the_ranking(service):
    whole = service.search_images("waving hand", k=50, collapse=False).hits  # every item of the index
    result = service.search_images("waving hand", k=8, collapse=True)
    first_of_each, seen = [], set()
    for hit in whole:
        if concept_key(hit.metadata) not in seen:
            seen.add(concept_key(hit.metadata))
            first_of_each.append(hit.id)
    assert [h.id for h in result.hits] == first_of_each[:8]
    assert len(set(_keys(result.hits))) == 8  # no concept twice on the page
    folded = [h for more in result.similar for h in more]
    assert len(folded) >= 5  # skin tones: "waving hand: light skin tone" ... under "waving hand"
    for hit, more in zip(result.hits, result.similar):
        assert all(concept_key(h.metadata) == concept_key(hit.metadata) and h.score <= hit.score for h in more)
    plain = service.search_images("waving hand", k=8, collapse=False)
    assert len(set(_keys(plain.hits))) < 8 and plain.similar == [[]] * 8  # unfolded, the variants take slots


def test_pages_continue_the_ranking_and_reuse_the_query_vector(service):
    whole = service.search_images("smiling face", k=24, collapse=False).hits
    encoded = service.query_vectors.encoded
    pages = [service.search_images("smiling face", k=8, offset=offset, collapse=False) for offset in (0, 8, 16)]
    assert [h.id for page in pages for h in page.hits] == [h.id for h in whole]
    assert [p.offset for p in pages] == [0, 8, 16] and all(p.more for p in pages)
    assert service.query_vectors.encoded == encoded  # encoded once, by the first search
    count = service.get(None, "image").index.manifest.count
    last = service.search_images("smiling face", k=10, offset=count - 4, collapse=False)
    assert len(last.hits) == 4 and not last.more
    folded = [service.search_images("smiling face", k=6, offset=o, collapse=True) for o in (0, 6)]
    together = service.search_images("smiling face", k=12, collapse=True)
    assert [h.id for p in folded for h in p.hits] == [h.id for h in together.hits]  # pages count concepts
    with pytest.raises(UserError, match="offset from 0 to 990"):
        service.search_images("smiling face", k=10, offset=995)


def test_code_pages_continue_the_ranking(service):
    query = "split a string into shell words"
    whole = service.search_code(query, k=15).hits
    pages = [service.search_code(query, k=5, offset=offset) for offset in (0, 5, 10)]
    assert [h.id for p in pages for h in p.hits] == [h.id for h in whole]
    assert [h.score for p in pages for h in p.hits] == pytest.approx([h.score for h in whole])
    only = service.search_code(query, k=5, package="numkit", offset=5, mode="dense")
    assert all(h.metadata["repo"] == "numkit" for h in only.hits) and only.offset == 5


def test_rest_offset_and_collapse(api):
    service, url = api
    params = {"index": "emoji", "q": "waving hand", "k": 5, "collapse": "true"}
    first = httpx.get(f"{url}/api/search", params=params).json()
    second = httpx.get(f"{url}/api/search", params={**params, "offset": 5}).json()
    expected = service.search_images("waving hand", k=10, collapse=True)
    assert [h["id"] for h in first["hits"] + second["hits"]] == [h.id for h in expected.hits]
    assert [h["rank"] for h in second["hits"]] == [6, 7, 8, 9, 10] and second["offset"] == 5 and second["more"]
    folded = [h for hit in first["hits"] for h in hit["similar"]]
    assert folded and all(h["image_url"].startswith("/gradio_api/file=") for h in folded)
    # a group holds the versions within the depth fetched for its page (4 x offset + k), so compare like with like
    assert [len(h["similar"]) for h in first["hits"]] == [len(s) for s in service.search_images("waving hand", 5, collapse=True).similar]
    plain = httpx.get(f"{url}/api/search", params={k: v for k, v in params.items() if k != "collapse"}).json()
    assert [h["id"] for h in plain["hits"]] == [h.id for h in service.search_images("waving hand", 5,
                                                                                     collapse=False).hits]
    assert all(h["similar"] == [] for h in plain["hits"])
    code = httpx.get(f"{url}/api/search", params={"index": "stdlib", "q": "mean of numbers", "k": 3,
                                                   "offset": 3}).json()
    assert [h["id"] for h in code["hits"]] == [h.id for h in service.search_code("mean of numbers", 6).hits[3:]]
    for bad, message in (({"offset": "-1"}, "offset is the rank"), ({"offset": "x"}, "offset is the rank"),
                         ({"offset": "996"}, "0 to 995"), ({"collapse": "maybe"}, "collapse is true or false")):
        reply = httpx.get(f"{url}/api/search", params={**params, **bad})
        assert reply.status_code == 400 and message in reply.json()["error"], reply.json()


def test_page_api_more_results_appends_the_next_page(api):
    from gradio_client import Client

    service, url = api
    client = Client(url, verbose=False)
    gallery, status = client.predict("smiling face", 4, "emoji", "(all)", True, api_name="/search_images")
    assert len(gallery) == 4
    gallery, status = client.predict(api_name="/more_images")
    expected = service.search_images("smiling face", k=8, collapse=True)  # the page folds by default
    assert [g["caption"].split(" · ")[0] for g in gallery] == [h.metadata["caption"] for h in expected.hits]
    assert "Results 5–8 added." in status and "**8 results**" in status
    status, cards = client.predict("split a string into shell words", 3, "stdlib", "(all)", "",
                                   api_name="/search_code")
    status, cards = client.predict(api_name="/more_code")
    assert cards.count("mmssl-card'") == 6 and "Results 4–6 added." in status
    fresh = Client(url, verbose=False)  # a session that searched nothing
    _, status = fresh.predict(api_name="/more_images")
    assert "Search with words first" in status


def test_cli_collapse_prints_each_concept_once_with_its_similar(service, app_root, capsys):
    import json

    from mmssl.cli import main

    index = str(app_root["indexes"] / "emoji")
    assert main(["search", "--index", index, "--query", "waving hand", "-k", "6", "--collapse", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    expected = service.search_images("waving hand", k=6, collapse=True)
    assert [h["id"] for h in hits] == [h.id for h in expected.hits]
    assert [[s["id"] for s in h["similar"]] for h in hits] == [[s.id for s in more] for more in expected.similar]
    assert main(["search", "--index", index, "--query", "waving hand", "-k", "6", "--collapse"]) == 0
    assert "similar)" in capsys.readouterr().out  # "(+5 similar)" after the folded concept
    assert main(["search", "--index", str(app_root["indexes"] / "stdlib"), "--query", "x", "--collapse"]) == 1
    assert "--collapse folds near-duplicate images" in capsys.readouterr().err
