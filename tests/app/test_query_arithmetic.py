"""Query arithmetic on the real image model (models/clip-default) over the app's emoji index: a subtracted
term pushes down the items it names, weights are the weighted sum the search runs, an example image is moved
by a text modifier; in the service, the CLI, the REST API and the page's API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmssl.app import UserError
from mmssl.cli import main

K = 50  # the service's max_k: every item the ranking keeps


def _ranks(service, query: str, word: str) -> list[int]:
    """Ranks (0 = best) of the items whose caption has ``word``; one left out of the top K counts as K."""
    hits = service.search_images(query, k=K).hits
    found = [i for i, h in enumerate(hits) if word in h.metadata["caption"]]
    missing = sum(word in r.metadata["caption"] for r in service.get(None, "image").index.store.live_rows()) - len(found)
    return found + [K] * missing


@pytest.mark.parametrize("query, negative, word", [
    ("face", "grinning", "grinning"), ("man", "vampire", "vampire"), ("person", "boat", "boat"),
    ("woman", "singer", "singer"), ("flag", "triangular", "triangular"), ("hand", "dark skin tone", "dark skin"),
])
def test_a_negative_term_pushes_down_the_items_it_names(service, query, negative, word):
    before, after = _ranks(service, query, word), _ranks(service, f"{query} -{negative}", word)
    assert before and np.mean(after) >= np.mean(before) + 3, (before, after)  # measured: +4.3 (singer) to +30
    assert sum(r < 5 for r in after) <= sum(r < 5 for r in before)


def _stored(service):
    loaded = service.get(None, "image")
    rows = loaded.index.store.live_rows()
    return loaded, [r.id for r in rows], loaded.model.encode_image([r.path for r in rows])  # (N, E)


def test_weights_are_the_weighted_sum_the_search_runs(service):
    loaded, ids, items = _stored(service)
    cat, hat = loaded.model.encode_text(["cat", "hat"])  # (E,), (E,)
    query = 2 * cat + hat
    scores = items @ (query / np.linalg.norm(query))  # (N,)
    result = service.search_images("2:cat + hat", k=8)
    assert [h.id for h in result.hits] == [ids[i] for i in np.argsort(-scores, kind="stable")[:8]]
    np.testing.assert_allclose([h.score for h in result.hits], np.sort(scores)[::-1][:8], atol=1e-5)
    assert result.note == "Searched for + 2×cat + hat."
    assert [h.id for h in service.search_images("cat", k=8).hits] != [h.id for h in result.hits]


def test_an_example_image_moved_by_a_text_modifier(service, app_root):
    loaded, ids, items = _stored(service)
    vampire = next(p for p in sorted(app_root["images"].iterdir())
                   if "vampire" in _caption(loaded, p) and "skin" not in _caption(loaded, p))
    plain = service.search_by_image(str(vampire), k=6)
    moved = service.search_by_image(str(vampire), k=6, modifier="-2:vampire")
    before, after = (sum("vampire" in h.metadata["caption"] for h in r.hits) for r in (plain, moved))
    assert before >= 5 and after < before, (before, after)  # its skin tones, then fewer of them
    assert moved.note == "Like the image, − 2×vampire."
    image = loaded.model.encode_image([str(vampire)])[0]
    query = image - 2 * loaded.model.encode_text(["vampire"])[0]
    scores = items @ (query / np.linalg.norm(query))
    assert [h.id for h in moved.hits] == [ids[i] for i in np.argsort(-scores, kind="stable")[:6]]
    with pytest.raises(UserError, match="has no term after it"):
        service.search_by_image(str(vampire), modifier="red +")


def _caption(loaded, path) -> str:
    rows = {r.path: r for r in loaded.index.store.live_rows()}
    return rows[str(path)].metadata["caption"] if str(path) in rows else ""


def test_malformed_arithmetic_is_a_friendly_error(service):
    for query, message in (("-people", "only subtracts"), ("beach -", "no term after it"), ("0:cat", "a weight is 0")):
        with pytest.raises(UserError, match=message):
            service.search_images(query)


def test_cli_search_reads_arithmetic_and_example_images(service, app_root, capsys):
    index = str(app_root["indexes"] / "emoji")
    assert main(["search", "--index", index, "--query", "2:cat + hat", "-k", "5", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [h["id"] for h in hits] == [h.id for h in service.search_images("2:cat + hat", k=5).hits]
    image = sorted(app_root["images"].iterdir())[7]
    assert main(["search", "--index", index, "--image", str(image), "--query=-red", "-k", "4", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [h["id"] for h in hits] == [h.id for h in service.search_by_image(str(image), 4, modifier="-red").hits]
    assert main(["search", "--index", index, "--query", "beach -"]) == 1
    assert "no term after it" in capsys.readouterr().err
    assert main(["search", "--index", index, "--image", str(image), "--queries", str(image)]) == 1
    assert "--image searches with one example image" in capsys.readouterr().err


def test_the_page_api_takes_arithmetic_and_a_modifier(running_app, service, app_root):
    from gradio_client import Client, handle_file

    client = Client(running_app, verbose=False)
    gallery, status = client.predict("face -grinning", 5, "emoji", "(all)", False, api_name="/search_images")
    expected = service.search_images("face -grinning", k=5, collapse=False).hits
    assert [g["caption"].rsplit(" ·", 1)[0] for g in gallery] == [h.metadata["caption"] for h in expected]
    assert "Searched for + face − grinning." in status
    image = sorted(app_root["images"].iterdir())[9]
    gallery, status = client.predict(handle_file(str(image)), 4, "emoji", "-2:face", api_name="/search_by_image")
    assert len(gallery) == 4 and "Like the image, − 2×face." in status
    gallery, status = client.predict(handle_file(str(image)), 4, "emoji", api_name="/search_by_image")
    assert "Images like your upload." in status  # the modifier is optional
    gallery, status = client.predict("beach -", 5, "emoji", "(all)", api_name="/search_images")
    assert gallery == [] and "no term after it" in status
