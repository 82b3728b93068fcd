"""Tiny real data for the pretext tests: rendered Noto emoji and standard-library source code."""

import numpy as np
import pytest

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
def emoji_array(emoji_rgba):
    """(N, 128, 128, 3) uint8, the corpus format (white background, centred)."""
    from mmssl.data.imageio import to_square_rgb

    return np.stack([np.asarray(to_square_rgb(im)) for im in emoji_rgba])


@pytest.fixture(scope="session")
def code_texts():
    from tiny_models import stdlib_pairs

    pairs = stdlib_pairs(200)
    return [code for _, code in pairs]


@pytest.fixture(scope="session")
def code_tokenizer():
    from tiny_models import stdlib_pairs

    from mmssl.encoders import train_code_tokenizer

    return train_code_tokenizer([t for pair in stdlib_pairs(200) for t in pair], vocab_size=1500)
