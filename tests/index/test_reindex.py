"""A built index's items embedded again from the index alone: with the same model the new index answers
exactly as the old one (the items embed as they did); the old index is never overwritten."""

import numpy as np
import pytest
from own_data import stdlib_project
from tiny_models import save_tiny_code_model, save_tiny_image_model

from mmssl.data import emoji
from mmssl.index import IndexExistsError, build_index, code_folder_items, image_corpus_items
from mmssl.index.reindex import reindex
from mmssl.model import load_model

QUERIES = ["split a string into shell words", "remove common leading whitespace", "quote a string for the shell"]


def answers(index, model, queries):
    hits = index.search(model.encode_text(queries), k=5)
    return [[(h.metadata["path"], h.metadata.get("func_name") or h.metadata.get("caption"), round(h.score, 5)) for h in row]
            for row in hits]


def test_a_code_index_embedded_again_answers_as_before(tmp_path):
    project = stdlib_project(tmp_path / "proj", ("textwrap", "shlex"))
    model = load_model(save_tiny_code_model(tmp_path / "code-tiny"), device="cpu")
    items, source = code_folder_items(project)
    old = build_index(tmp_path / "old", model, items, source=source, progress=False)
    seen = []
    new = reindex(old.folder, model, tmp_path / "new", on_progress=lambda done, total: seen.append((done, total)))
    assert new.manifest.count == old.manifest.count > 20 and new.manifest.source == old.manifest.source
    assert answers(new, model, QUERIES) == answers(old, model, QUERIES)
    assert seen and seen[-1] == (old.manifest.count, old.manifest.count)
    with pytest.raises(IndexExistsError):
        reindex(old.folder, model, tmp_path / "new")


def test_an_image_index_embedded_again_with_another_model(tmp_path):
    emoji.build(tmp_path / "emoji", limit=12)
    first = load_model(save_tiny_image_model(tmp_path / "a", seed=0), device="cpu")
    second = load_model(save_tiny_image_model(tmp_path / "b", seed=1), device="cpu")
    items, source = image_corpus_items("emoji", "train", tmp_path / "emoji")
    old = build_index(tmp_path / "old", first, items, source=source, progress=False)
    new = reindex(old.folder, second, tmp_path / "new")
    direct = build_index(tmp_path / "direct", second, image_corpus_items("emoji", "train", tmp_path / "emoji")[0],
                         source=source, progress=False)
    assert new.manifest.model_fingerprint == second.fingerprint != old.manifest.model_fingerprint
    got, want = answers(new, second, ["grinning face"]), answers(direct, second, ["grinning face"])
    assert [p for p, _, _ in got[0]] == [p for p, _, _ in want[0]]
    assert np.allclose([s for *_, s in got[0]], [s for *_, s in want[0]], atol=1e-4)
