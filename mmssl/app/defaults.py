"""The demo's default indexes, built when missing: every emoji + clipart image (all splits: it is a
search product, not an evaluation) with the image-text model, and the whole code corpus (standard
library + packages) with the code model. Run by ``python -m mmssl serve --build-missing`` (``make demo``).
"""

from __future__ import annotations

import time
from itertools import chain
from pathlib import Path

from mmssl.app.config import DEFAULT_CODE_INDEX, DEFAULT_IMAGE_INDEX, AppConfig
from mmssl.data.paths import corpus_dir
from mmssl.data.splits import SPLITS
from mmssl.index import build_index, code_corpus_items, image_corpus_items, index_folder
from mmssl.index.manifest import MANIFEST_FILE

DEFAULT_IMAGE_CORPORA = ("emoji", "clipart")


def _model(models: dict, path: str):
    from mmssl.model import load_model

    if path not in models:
        models[path] = load_model(path)
    return models[path]


def _build_model(models: dict, path: str):
    from mmssl.model import BUILD_ENCODING

    return _model(models, path).with_encoding(BUILD_ENCODING)


def needs_build(name: str, model_path: str, models: dict, log=print) -> bool:
    """True when ``indexes/NAME`` is missing or was built with another model than ``model_path`` holds."""
    from mmssl.index import load_index

    if not (index_folder(name) / MANIFEST_FILE).is_file():
        return True
    built_with = load_index(name).manifest.model_fingerprint
    if built_with != _model(models, model_path).fingerprint:
        log(f"indexes/{name} was built with another model ({built_with}); rebuilding it for {model_path}")
        return True
    return False


def _corpus_items(source_fn, names_and_splits):
    """Items of several corpus splits as one list, so the progress bar knows its total."""
    streams = [source_fn(*args)[0] for args in names_and_splits]
    return list(chain.from_iterable(streams))


def ensure_default_indexes(config: AppConfig, models: dict | None = None, log=print) -> dict[str, float]:
    """Build each default index of ``config.indexes`` that is missing (or stale: built with another
    model) and can be built; returns ``{name: seconds}`` for the ones built. A missing corpus or model
    is reported through ``log``, not raised. Models loaded on the way are left in ``models``
    (path -> model) for the app to reuse.
    """
    models = {} if models is None else models
    built: dict[str, float] = {}
    if DEFAULT_IMAGE_INDEX in config.indexes and needs_build(DEFAULT_IMAGE_INDEX, config.image_model, models, log):
        missing = [n for n in DEFAULT_IMAGE_CORPORA if not (corpus_dir(n) / "report.json").exists()]
        if missing:
            log(f"{DEFAULT_IMAGE_INDEX}: corpora not built ({', '.join(missing)}); run `python -m mmssl data build "
                f"{' '.join(missing)}`")
        else:
            start = time.perf_counter()
            log(f"building indexes/{DEFAULT_IMAGE_INDEX} from {' + '.join(DEFAULT_IMAGE_CORPORA)} (all splits) "
                f"with {config.image_model} ...")
            items = _corpus_items(image_corpus_items, [(n, s) for n in DEFAULT_IMAGE_CORPORA for s in SPLITS])
            build_index(DEFAULT_IMAGE_INDEX, _build_model(models, config.image_model), items,
                        source={"type": "image-corpus", "corpus": "+".join(DEFAULT_IMAGE_CORPORA), "split": "all"})
            built[DEFAULT_IMAGE_INDEX] = time.perf_counter() - start
            log(f"indexes/{DEFAULT_IMAGE_INDEX}: {len(items)} images in {built[DEFAULT_IMAGE_INDEX]:.0f} s")
    if DEFAULT_CODE_INDEX in config.indexes:
        if not Path(config.code_model).exists():
            log(f"{DEFAULT_CODE_INDEX}: no code model at {config.code_model}; the Code tab will say so")
        elif not needs_build(DEFAULT_CODE_INDEX, config.code_model, models, log):
            pass
        elif not (corpus_dir("code") / "report.json").exists():
            log(f"{DEFAULT_CODE_INDEX}: the code corpus is not built; run `python -m mmssl data build code`")
        else:
            start = time.perf_counter()
            log(f"building indexes/{DEFAULT_CODE_INDEX} from the code corpus (all splits) with {config.code_model} ...")
            items = _corpus_items(code_corpus_items, [(s,) for s in SPLITS])
            build_index(DEFAULT_CODE_INDEX, _build_model(models, config.code_model), items,
                        source={"type": "code-corpus", "corpus": "code", "split": "all"})
            built[DEFAULT_CODE_INDEX] = time.perf_counter() - start
            log(f"indexes/{DEFAULT_CODE_INDEX}: {len(items)} functions in {built[DEFAULT_CODE_INDEX]:.0f} s")
    return built
