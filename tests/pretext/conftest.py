"""Tiny real data for the pretext tests (the rendered emoji and stdlib code live in tests/conftest.py)."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def emoji_array(emoji_rgba):
    """(N, 128, 128, 3) uint8, the corpus format (white background, centred)."""
    from mmssl.data.imageio import to_square_rgb

    return np.stack([np.asarray(to_square_rgb(im)) for im in emoji_rgba])


@pytest.fixture(scope="session")
def code_tokenizer():
    from tiny_models import stdlib_pairs

    from mmssl.encoders import train_code_tokenizer

    return train_code_tokenizer([t for pair in stdlib_pairs(200) for t in pair], vocab_size=1500)
