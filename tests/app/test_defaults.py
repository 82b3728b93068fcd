"""``make demo``'s default indexes: built when missing, reused on the next start, rebuilt when the
model changed; a missing corpus or model is reported, not fatal."""

from __future__ import annotations

from mmssl.app import AppConfig
from mmssl.app import defaults
from mmssl.index import load_index


def test_built_once_then_reused_then_rebuilt_for_a_new_model(app_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MMSSL_DATA_DIR", str(app_root["root"]))  # holds corpora/emoji (the test emoji)
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    monkeypatch.setattr(defaults, "DEFAULT_IMAGE_CORPORA", ("emoji",))
    models = dict(app_root["models"])
    image_model = next(p for p, m in models.items() if m.kind == "image-text")
    config = AppConfig(image_model=image_model, code_model=str(tmp_path / "no-code-model"))
    lines = []
    built = defaults.ensure_default_indexes(config, models, log=lines.append)
    assert list(built) == ["emoji-clipart"] and any("no code model" in line for line in lines)
    index = load_index("emoji-clipart")
    assert index.manifest.count == len(list((app_root["images"]).iterdir()))
    assert index.manifest.source["corpus"] == "emoji"
    assert defaults.ensure_default_indexes(config, models, log=lines.append) == {}  # second start: reused

    code_model = str(app_root["code_model"])
    assert defaults.needs_build("emoji-clipart", code_model, models, log=lines.append)  # another model
    assert "built with another model" in lines[-1]


def test_missing_corpora_are_reported(tmp_path, monkeypatch, app_root):
    monkeypatch.setenv("MMSSL_DATA_DIR", str(tmp_path / "empty-data"))
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    lines = []
    config = AppConfig(code_model=str(app_root["code_model"]))
    assert defaults.ensure_default_indexes(config, dict(app_root["models"]), log=lines.append) == {}
    assert any("corpora not built (emoji, clipart)" in line for line in lines)
    assert any("code corpus is not built" in line for line in lines)


def test_serve_runs_queries_on_the_configured_threads(monkeypatch):
    """``serve --threads N`` reaches torch and FAISS before the service loads (default: one thread)."""
    import importlib

    import faiss
    import torch

    from mmssl import cli

    serve_module = importlib.import_module("mmssl.app.serve")  # the module (mmssl.app.serve is also the function)

    seen = {}

    class Stop(Exception):
        pass

    def fake_load(config, models):
        seen.update(config=config, torch=torch.get_num_threads(), faiss=faiss.omp_get_max_threads())
        raise Stop

    before = torch.get_num_threads(), faiss.omp_get_max_threads()
    monkeypatch.setattr(serve_module.SearchService, "load", staticmethod(fake_load))
    try:
        for argv, threads in ((["serve"], 1), (["serve", "--threads", "2"], 2)):
            try:
                cli.main(argv)
            except Stop:
                pass
            assert seen["config"].threads == threads
            assert seen["torch"] == threads and seen["faiss"] == threads
    finally:
        torch.set_num_threads(before[0])
        faiss.omp_set_num_threads(before[1])
