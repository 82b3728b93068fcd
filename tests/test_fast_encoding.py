"""The fast encoding (``load_model(..., encoding="fast")``) against fp32, on the release code model
and real standard-library functions; and the quiet model load."""

import logging
from pathlib import Path

import numpy as np
import pytest
from tiny_models import save_tiny_image_model, stdlib_pairs

import mmssl
from mmssl.model import FAST_MAX_LENGTH

CODE_DEFAULT = Path(__file__).resolve().parents[1] / "models" / "code-default"


@pytest.fixture(scope="module")
def fp32_model():
    return mmssl.load_model(CODE_DEFAULT, device="cpu")


@pytest.fixture(scope="module")
def long_and_short_functions(fp32_model):
    """30 real functions, 10 of them longer than the fast path's token cap (so it truncates them)."""
    tokenizer = fp32_model.dual_encoder.item_tower.hf_tokenizer
    pairs = stdlib_pairs(400)
    lengths = [len(tokenizer(code)["input_ids"]) for _, code in pairs]
    long = [pair for pair, n in zip(pairs, lengths) if n > FAST_MAX_LENGTH + 20][:10]
    short = [pair for pair, n in zip(pairs, lengths) if n <= FAST_MAX_LENGTH][:20]
    assert len(long) == 10 and len(short) == 20
    return long + short


def test_fast_code_embeddings_match_fp32(fp32_model, long_and_short_functions):
    codes = [code for _, code in long_and_short_functions]
    fast = fp32_model.with_encoding("fast")
    assert fast.encoding == "fast" and fp32_model.encoding == "fp32" and fast.fingerprint == fp32_model.fingerprint
    exact, quick = fp32_model.encode_code(codes), fast.encode_code(codes)  # (30, E) each
    cosine = (exact * quick).sum(1)  # (30,)
    np.testing.assert_allclose(cosine[10:], 1.0, atol=1e-5)  # short functions: the same tokens, the same vectors
    # long ones lose their tail: measured 0.88..0.99 here (issue 16 asks >= 0.99; see bench/encode.py)
    assert 0.8 < cosine[:10].min() and cosine[:10].max() < 1 - 1e-4, cosine[:10]
    np.testing.assert_allclose(np.linalg.norm(quick, axis=1), 1.0, atol=1e-5)


def test_fast_encoding_keeps_most_of_retrieval(fp32_model, long_and_short_functions):
    docstrings = [doc for doc, _ in long_and_short_functions]
    codes = [code for _, code in long_and_short_functions]
    top1 = {}
    for model in (fp32_model, fp32_model.with_encoding("fast")):
        scores = model.encode_text(docstrings) @ model.encode_code(codes).T  # (30, 30)
        top1[model.encoding] = float((scores.argmax(1) == np.arange(len(codes))).mean())
    assert top1["fp32"] >= 0.8 and top1["fast"] >= top1["fp32"] - 0.1, top1


def test_bucketed_encoding_returns_input_order(fp32_model, long_and_short_functions):
    codes = [code for _, code in long_and_short_functions]
    shuffled = np.random.default_rng(0).permutation(len(codes))
    vectors = fp32_model.encode_code(codes, batch_size=4)  # 8 buckets, long and short mixed in the input
    again = fp32_model.encode_code([codes[i] for i in shuffled], batch_size=7)
    np.testing.assert_allclose(again, vectors[shuffled], atol=1e-5)
    one_by_one = np.concatenate([fp32_model.encode_code([code]) for code in codes[:3]])
    np.testing.assert_allclose(vectors[:3], one_by_one, atol=1e-5)


def test_unknown_encoding_is_refused_before_loading(fp32_model):
    with pytest.raises(ValueError, match="unknown encoding 'int4'; expected one of fp32, fast"):
        mmssl.load_model(CODE_DEFAULT, encoding="int4")
    with pytest.raises(ValueError, match="unknown encoding"):
        fp32_model.with_encoding("bf16")


def test_model_load_says_nothing_alarming(tmp_path, capfd, caplog):
    caplog.set_level(logging.INFO)
    folder = save_tiny_image_model(tmp_path / "clip")  # an open_clip image tower + MiniLM queries
    capfd.readouterr()
    mmssl.load_model(folder, device="cpu")
    out, err = capfd.readouterr()
    said = out + err + caplog.text
    assert "initialized randomly" not in said and "Loading weights" not in said, said
    assert logging.getLogger().filters == []  # the filter was only there during the call
