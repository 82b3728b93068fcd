"""Tiny real data for the contrastive tests: rendered emoji (Noto Color Emoji, with their Unicode
categories) and functions extracted from standard-library files with the corpus extractor."""

import importlib
import inspect

import numpy as np
import pytest

STDLIB_MODULES = ("textwrap", "shlex", "fnmatch", "posixpath", "string", "base64", "calendar", "difflib",
                  "html", "ipaddress", "statistics", "email.utils")


@pytest.fixture(scope="session")
def emoji_images():
    """(images (N, 128, 128, 3) uint8, category names): 96 emoji spread over the categories."""
    from mmssl.data import emoji
    from mmssl.data.imageio import to_square_rgb

    emoji.fetch()  # a no-op once the font and CLDR files are unpacked
    entries = [e for e in emoji.emoji_entries() if e.category and e.base == e.emoji.replace("\ufe0f", "")]
    renderer = emoji.EmojiRenderer()
    step = max(1, len(entries) // 120)
    images, categories = [], []
    for entry in entries[::step]:
        image, _ = renderer.render(entry.emoji)
        if image is not None:
            images.append(np.asarray(to_square_rgb(image)))
            categories.append(entry.category)
        if len(images) == 96:
            break
    assert len(images) == 96 and len(set(categories)) >= 5
    return np.stack(images), categories


@pytest.fixture(scope="session")
def stdlib_functions() -> list[dict]:
    """CodeSearchNet-style records (``code``, ``original_string``, ``docstring``, ``path``) of stdlib functions."""
    from mmssl.data.code import extract_source

    records = []
    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        path = name.replace(".", "/") + ".py"
        records += extract_source(inspect.getsource(module), path, "stdlib")
    assert len(records) >= 150
    return records


@pytest.fixture(scope="session")
def code_tokenizer(stdlib_functions):
    from mmssl.encoders import train_code_tokenizer

    return train_code_tokenizer([t for r in stdlib_functions for t in (r["code"], r["docstring"])], vocab_size=2000)


@pytest.fixture(autouse=True)
def _no_curve_plots(monkeypatch):
    """The trainer redraws curves.png at every checkpoint (~1-3 s with matplotlib for the dozen metrics a
    contrastive method logs); the plot is the trainer's business, tested in tests/train."""
    monkeypatch.setattr("mmssl.train.trainer.plot_curves", lambda *args, **kwargs: None)
