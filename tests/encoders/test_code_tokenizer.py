"""The code subword tokenizer: shared units for identifiers and words, save/load, truncation."""

import time

import pytest
import torch

from mmssl.encoders import encode_batch, load_code_tokenizer, save_code_tokenizer, train_code_tokenizer
from mmssl.encoders.tokenizer import CLS_ID, PAD_ID


def test_identifiers_and_words_share_units(code_tokenizer):
    def tokens(text):
        return code_tokenizer.encode(text, add_special_tokens=False).tokens

    assert tokens("parseQueryString") == tokens("parse query string") == ["parse", "query", "string"]
    assert tokens("parse_query_string") == ["parse", "_", "query", "_", "string"]
    assert tokens("HTTPResponse") == tokens("http response")
    assert tokens("x = 42") == ["x", "=", "4", "2"]  # digits one by one: no number soup in the vocabulary


def test_vocab_size_and_special_ids(stdlib_pairs):
    tokenizer = train_code_tokenizer([code for _, code in stdlib_pairs], vocab_size=1000)
    assert tokenizer.get_vocab_size() == 1000
    assert [tokenizer.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]")] == [0, 1, 2]


def test_save_load_round_trip(code_tokenizer, stdlib_pairs, tmp_path):
    path = save_code_tokenizer(code_tokenizer, tmp_path / "tok" / "tokenizer.json")
    loaded = load_code_tokenizer(path)
    texts = [text for pair in stdlib_pairs[:50] for text in pair]
    assert [e.ids for e in loaded.encode_batch(texts)] == [e.ids for e in code_tokenizer.encode_batch(texts)]
    summary = "Wrap a single paragraph of text, returning a list of wrapped lines."
    ids = code_tokenizer.encode(summary).ids
    assert code_tokenizer.decode(ids) == "wrap a single paragraph of text, returning a list of wrapped lines."


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train one with"):
        load_code_tokenizer(tmp_path / "missing.json")
    from tokenizers import Tokenizer, models

    foreign = Tokenizer(models.WordLevel({"a": 0, "b": 1}, unk_token="b"))
    foreign.save(str(tmp_path / "foreign.json"))
    with pytest.raises(ValueError, match="not an mmssl code tokenizer"):
        load_code_tokenizer(tmp_path / "foreign.json")


def test_encode_batch_layout(code_tokenizer):
    batch = encode_batch(code_tokenizer, ["def wrap(text): pass", "", "wrap"], max_length=6)
    ids, mask = batch["input_ids"], batch["attention_mask"]  # (3, L)
    assert ids.shape == mask.shape == (3, 6)
    assert (ids[:, 0] == CLS_ID).all()  # never empty, even for ""
    assert mask.sum(1).tolist() == [6, 1, 2]
    assert (ids[mask == 0] == PAD_ID).all()


def test_huge_string_is_truncated_fast(code_tokenizer):
    huge = "result = compute_the_value(first_argument, second_argument)\n" * 1700
    assert len(huge) > 100_000
    start = time.perf_counter()
    batch = encode_batch(code_tokenizer, [huge] * 8, max_length=256)
    assert time.perf_counter() - start < 0.5
    assert batch["input_ids"].shape == (8, 256)
    assert torch.equal(batch["input_ids"][0], batch["input_ids"][7])
