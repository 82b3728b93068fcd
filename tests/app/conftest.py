"""Small real indexes for the app tests, built once per session in a temp folder:

* ``emoji``: ~30 base emoji (with their variants) rendered from the real font, embedded with the
  release image model ``models/clip-default``;
* ``stdlib``: the functions of a few standard-library modules (``mmssl.data.code`` extraction, two
  "packages"), embedded with a tiny NBoW code model.

``running_app`` serves them on 127.0.0.1 at a free port, as ``python -m mmssl serve`` would.
"""

from __future__ import annotations

import inspect
import shutil
import socket
from itertools import chain

import pytest
from tiny_models import save_tiny_code_model

from mmssl.app import AppConfig, SearchService, launch
from mmssl.data import emoji
from mmssl.data.splits import SPLITS
from mmssl.data.paths import PROJECT_ROOT
from mmssl.index import build_index, code_folder_items, image_corpus_items
from mmssl.model import load_model

CLIP_DEFAULT = PROJECT_ROOT / "models" / "clip-default"
PACKAGES = {"textkit": ("textwrap", "shlex", "fnmatch"), "numkit": ("statistics", "fractions")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_root(tmp_path_factory):
    """``{"indexes", "images", "code_model", "projects": {package: folder}, "models": {path: model}}``."""
    root = tmp_path_factory.mktemp("app")
    corpora = root / "corpora"
    emoji.build(corpora / "emoji", limit=30)
    image_model = load_model(CLIP_DEFAULT)
    items = list(chain.from_iterable(image_corpus_items("emoji", split, corpora / "emoji")[0] for split in SPLITS))
    build_index(root / "indexes" / "emoji", image_model, items,
                source={"type": "image-corpus", "corpus": "emoji", "split": "all"}, progress=False)

    code_model_path = save_tiny_code_model(root / "code-tiny")
    code_model = load_model(code_model_path)
    projects = {}
    for package, modules in PACKAGES.items():
        folder = root / "projects" / package
        folder.mkdir(parents=True)
        for name in modules:
            shutil.copy(inspect.getsourcefile(__import__(name)), folder / f"{name}.py")
        projects[package] = folder
    code_items = chain.from_iterable(code_folder_items(folder, repo=package)[0] for package, folder in projects.items())
    build_index(root / "indexes" / "stdlib", code_model, code_items,
                source={"type": "code-folder", "folder": str(root / "projects")}, progress=False)
    return {"root": root, "indexes": root / "indexes", "images": corpora / "emoji" / "images",
            "code_model": code_model_path, "projects": projects,
            "models": {str(CLIP_DEFAULT): image_model, str(code_model_path): code_model}}


def _app_config(app_root, **overrides) -> AppConfig:
    options = dict(host="127.0.0.1", port=free_port(), indexes=[str(app_root["indexes"] / "emoji"),
                   str(app_root["indexes"] / "stdlib")], image_model=str(CLIP_DEFAULT),
                   code_model=str(app_root["code_model"]), auth="")
    options.update(overrides)
    return AppConfig(**options)


@pytest.fixture(scope="session")
def app_config(app_root):
    """``app_config(**overrides)`` -> an :class:`AppConfig` over the test indexes, at a free port, without login."""
    return lambda **overrides: _app_config(app_root, **overrides)


@pytest.fixture(scope="session")
def load_service(app_root):
    """``load_service(config)``: :meth:`SearchService.load` reusing the session's loaded models."""
    return lambda config: SearchService.load(config, app_root["models"])


@pytest.fixture(scope="session")
def service(app_config, load_service):
    return load_service(app_config())


@pytest.fixture(scope="session")
def running_app(service):
    """The app on 127.0.0.1:<free port>; yields its base URL."""
    demo = launch(service, block=False, quiet=True)
    yield demo.local_url
    demo.close()
