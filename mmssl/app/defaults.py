"""The demo's default indexes, built when missing, in stages that are searchable as they land:

* ``emoji-clipart`` (image-text model): the emoji images first, then emoji + clipart (all splits: it
  is a search product, not an evaluation);
* ``code`` (code model): the standard library first (read from this Python's own files, no download),
  then the standard library + the libraries of the code corpus.

:func:`default_build_jobs` plans the work as background :class:`~mmssl.app.jobs.BuildJob` s, which
``python -m mmssl serve --build-missing`` (``make demo``) runs behind the page; each job first builds
the corpora it needs (``build_corpora``). :func:`ensure_default_indexes` runs the same plan in the
calling thread. A stage already in place with the same model is skipped; an interrupted stage
resumes from its embedding chunks (:mod:`mmssl.index.staged`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import chain

from mmssl.app.config import DEFAULT_CODE_INDEX, DEFAULT_IMAGE_INDEX, AppConfig
from mmssl.app.jobs import BuildJob, JobRunner, Step
from mmssl.data.paths import corpus_dir
from mmssl.data.splits import SPLITS
from mmssl.index import code_corpus_items, code_folder_items, image_corpus_items
from mmssl.index.embedding import with_encoding
from mmssl.index.staged import build_stage, stages_done

DEFAULT_IMAGE_CORPORA = ("emoji", "clipart")
CODE_STAGES = ("standard library", "libraries")
STDLIB = "stdlib"


def _model(models: dict, path: str):
    from mmssl.model import load_model

    if path not in models:
        models[path] = load_model(path)
    return models[path]


def _build_model(models: dict, path: str):
    from mmssl.model import BUILD_ENCODING

    return with_encoding(_model(models, path), BUILD_ENCODING)


def needs_build(name: str, model_path: str, models: dict, log=print) -> bool:
    """True when ``indexes/NAME`` is missing, corrupt, unfinished, or was built with another model than
    ``model_path`` holds."""
    from mmssl.index import IndexCorruptError, IndexNotFoundError, read_manifest

    try:
        manifest = read_manifest(name)
    except IndexNotFoundError:
        return True
    except IndexCorruptError as e:
        log(f"{e}; rebuilding it")
        return True
    if manifest.model_fingerprint != _model(models, model_path).fingerprint:
        log(f"indexes/{name} was built with another model ({manifest.model_fingerprint}); rebuilding it for "
            f"{model_path}")
        return True
    return not manifest.source.get("complete", True)


def _corpus_built(name: str) -> bool:
    return (corpus_dir(name) / "report.json").exists()


def _corpus_step(name: str) -> Step:
    def run(report) -> str:
        from mmssl.data.build import build

        if _corpus_built(name):
            return ""
        (result,) = build([name])
        return f"corpus {name}: {result.total:,} items"
    return Step(f"{name} corpus", run)


def _image_items(corpora) -> list:
    """Items of every split of ``corpora`` as one list, so progress knows its total."""
    return list(chain.from_iterable(image_corpus_items(n, s)[0] for n in corpora for s in SPLITS))


def _stdlib_items() -> list:
    """The standard library's documented functions, read from this Python's own files (the code
    corpus's rules, so the libraries stage adds what the corpus adds)."""
    from mmssl.data.code import stdlib_dir

    items, _ = code_folder_items(stdlib_dir(), repo=STDLIB, require_docstring=True)
    return list(iter(items))  # iter: no counting pass


def _library_items() -> list:
    """The code corpus's functions outside the standard library (every split)."""
    return [item for s in SPLITS for item in code_corpus_items(s)[0] if item.metadata.get("repo") != STDLIB]


def _stage_step(name: str, model, labels: list[str], stage: int, items_fn: Callable[[], list], source: dict,
                unit: str, **options) -> Step:
    def run(report) -> str:
        items = items_fn()
        built = build_stage(name, model, labels, stage, items, source=source, on_progress=report, progress=False,
                            **options)
        return "" if built is None else f"{labels[stage]}: {len(items):,} {unit} searchable"
    return Step(labels[stage], run, ready=labels[stage])


def _image_job(config: AppConfig, models: dict, build_corpora: bool, log) -> BuildJob | None:
    corpora = list(DEFAULT_IMAGE_CORPORA)
    missing = [n for n in corpora if not _corpus_built(n)]
    if missing and not build_corpora:
        log(f"{DEFAULT_IMAGE_INDEX}: corpora not built ({', '.join(missing)}); run `python -m mmssl data build "
            f"{' '.join(missing)}`")
        return None
    from mmssl.model import model_exists

    if not model_exists(config.image_model):
        log(f"{DEFAULT_IMAGE_INDEX}: no image-text model at {config.image_model}; the Images tab will say so")
        return None
    if not needs_build(DEFAULT_IMAGE_INDEX, config.image_model, models, log):
        return None
    model = _build_model(models, config.image_model)
    labels = ["+".join(corpora[:i + 1]) for i in range(len(corpora))]
    source = {"type": "image-corpus", "corpus": "+".join(corpora), "split": "all"}
    done = stages_done(DEFAULT_IMAGE_INDEX, model.fingerprint, labels)
    steps = []
    for i, corpus in enumerate(corpora):
        if i < done:
            continue
        steps.append(_corpus_step(corpus))
        steps.append(_stage_step(DEFAULT_IMAGE_INDEX, model, labels, i, lambda i=i: _image_items(corpora[:i + 1]),
                                 source, "images"))
    return BuildJob(DEFAULT_IMAGE_INDEX, "image", steps)


def _code_job(config: AppConfig, models: dict, build_corpora: bool, log) -> BuildJob | None:
    from mmssl.model import model_exists

    if not model_exists(config.code_model):
        log(f"{DEFAULT_CODE_INDEX}: no code model at {config.code_model}; the Code tab will say so")
        return None
    if not _corpus_built("code") and not build_corpora:
        log(f"{DEFAULT_CODE_INDEX}: the code corpus is not built; run `python -m mmssl data build code`")
        return None
    if not needs_build(DEFAULT_CODE_INDEX, config.code_model, models, log):
        return None
    model = _build_model(models, config.code_model)
    labels = list(CODE_STAGES)
    source = {"type": "code-corpus", "corpus": "code", "split": "all"}
    done = stages_done(DEFAULT_CODE_INDEX, model.fingerprint, labels)
    stdlib: list = []

    def stdlib_items() -> list:
        if not stdlib:
            stdlib.extend(_stdlib_items())
        return stdlib

    steps = []
    if done < 1:
        steps.append(_stage_step(DEFAULT_CODE_INDEX, model, labels, 0, stdlib_items, source, "functions"))
    steps.append(_corpus_step("code"))
    steps.append(_stage_step(DEFAULT_CODE_INDEX, model, labels, 1, lambda: stdlib_items() + _library_items(), source,
                             "functions"))
    return BuildJob(DEFAULT_CODE_INDEX, "code", steps)


def default_build_jobs(config: AppConfig, models: dict | None = None, *, build_corpora: bool = False,
                       log=print) -> tuple[list[BuildJob], list[tuple[BuildJob, Step]]]:
    """The jobs that complete the default indexes of ``config.indexes``, and the order of their steps:
    each index's first searchable stage before anything else, then the rest of the code index, then the
    rest of the image index.

    A missing model, or a missing corpus when ``build_corpora`` is False, is reported through ``log``
    and its index left out. Models loaded on the way are left in ``models`` (path -> model).
    """
    models = {} if models is None else models
    jobs = []
    if DEFAULT_IMAGE_INDEX in config.indexes:
        jobs.append(_image_job(config, models, build_corpora, log))
    if DEFAULT_CODE_INDEX in config.indexes:
        jobs.append(_code_job(config, models, build_corpora, log))
    jobs = [job for job in jobs if job is not None and job.steps]
    first = [(job, step) for job in jobs for step in _through_first_ready(job.steps)]
    # then the code index's libraries (the long build), then the rest of the images
    rest = [(job, step) for job in sorted(jobs, key=lambda j: j.kind != "code")
            for step in job.steps[len(_through_first_ready(job.steps)):]]
    return jobs, first + rest


def _through_first_ready(steps: list[Step]) -> list[Step]:
    for i, step in enumerate(steps):
        if step.ready:
            return steps[:i + 1]
    return steps


def ensure_default_indexes(config: AppConfig, models: dict | None = None, log=print, *,
                           build_corpora: bool = False) -> dict[str, float]:
    """Build, in this thread, each default index of ``config.indexes`` that is missing, unfinished or
    stale (built with another model); returns ``{name: seconds}`` for the ones built."""
    jobs, schedule = default_build_jobs(config, models, build_corpora=build_corpora, log=log)
    start = {job.index: time.perf_counter() for job in jobs}
    runner = JobRunner(jobs, schedule, log=log)
    runner.run()
    for job in jobs:
        if job.state == "failed":
            log(f"indexes/{job.index}: {job.message}")
    return {job.index: time.perf_counter() - start[job.index] for job in jobs if job.state == "done"}
