"""Test-wide settings (offline hubs, no analytics, fixed seeds) and tiny real data shared by the
encoder and pretext tests: rendered Noto emoji and standard-library source code."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


# one emoji per Unicode group and a few more, all in every Noto Color Emoji version
EMOJI = "😀😂😍😡🐶🐱🦊🐸🍎🍌🍕🍩🚗🚲✈️🚀⚽🎸🎁💡📚✏️🔑❤️⭐🌈🌵🌻🏠⏰💧🔥"


@pytest.fixture(scope="session")
def emoji_rgba():
    """32 real emoji as the font draws them: RGBA, 136x128 (odd aspect, transparent background)."""
    from mmssl.data import emoji

    emoji.fetch()  # idempotent; CI fetches the font for `make test`
    renderer = emoji.EmojiRenderer()
    images = []
    for ch in EMOJI:
        if ch == "\ufe0f":
            continue
        image, reason = renderer.render(ch)
        if image is not None:
            images.append(image)
    assert len(images) >= 24
    return images


@pytest.fixture(scope="session")
def code_texts():
    from tiny_models import stdlib_pairs

    pairs = stdlib_pairs(200)
    return [code for _, code in pairs]


@pytest.fixture(scope="module")
def emoji_folder(tmp_path_factory):
    """A user folder of 20 real emoji PNGs (a fresh copy per test module: some tests delete files)."""
    import shutil

    from mmssl.data import emoji
    from mmssl.data.folder import image_files

    emoji.fetch()
    corpus = tmp_path_factory.mktemp("corpus")
    emoji.build(corpus, limit=20)
    folder = tmp_path_factory.mktemp("photos")
    for path in image_files(corpus / "images"):
        shutil.copy(path, folder / path.name)
    return folder
