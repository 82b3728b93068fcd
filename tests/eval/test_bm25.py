"""Vectorised BM25 equals rank_bm25's BM25Okapi and finds obvious matches."""

import random

import numpy as np
import pytest
import torch
from rank_bm25 import BM25Okapi

from mmssl.eval.bm25 import BM25Index, lexical_terms, split_identifier
from mmssl.eval.codesearchnet import codesearchnet_eval


def test_split_identifier():
    assert split_identifier("parse_qs") == ["parse", "qs"]
    assert split_identifier("parseQueryString") == ["parse", "query", "string"]
    assert split_identifier("HTTPServer") == ["http", "server"]
    assert split_identifier("__init__") == ["init"]
    assert split_identifier("utf8") == ["utf8"]
    assert split_identifier("(") == []


def test_lexical_terms_options():
    tokens = ["def", "parse_qs", "(", "qs", ")"]
    assert lexical_terms(tokens, split_identifiers=False) == ["def", "parse_qs", "qs"]
    assert lexical_terms(tokens, keep_whole=False) == ["def", "parse", "qs", "qs"]
    assert lexical_terms(tokens) == ["def", "parse", "qs", "parse_qs", "qs"]
    assert lexical_terms("Parse a query-string") == ["parse", "a", "query", "string", "query-string"]


def small_corpus(seed):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(40)]
    # Skewed word choice makes some terms appear in more than half the documents (negative IDF).
    documents = [[rng.choice(words[: rng.randint(2, 40)]) for _ in range(rng.randint(1, 25))] for _ in range(60)]
    queries = [[rng.choice(words) for _ in range(rng.randint(1, 6))] + ["unseen"] for _ in range(30)]
    return documents, queries


@pytest.mark.parametrize("seed", [0, 1])
def test_scores_equal_rank_bm25(seed):
    documents, queries = small_corpus(seed)
    index = BM25Index(documents, k1=1.2, b=0.75)
    reference = BM25Okapi(documents, k1=1.2, b=0.75, epsilon=0.25)
    doc_freq = np.bincount(index.weights.indices)
    assert (doc_freq > 30).any()  # some raw Okapi IDFs are negative, so the epsilon floor is exercised
    expected = np.stack([reference.get_scores(query) for query in queries])  # (Q, N)
    np.testing.assert_allclose(index.score(queries), expected, rtol=1e-12, atol=1e-12)
    subset = [5, 0, 17]
    expected_subset = np.stack([reference.get_batch_scores(query, subset) for query in queries])
    np.testing.assert_allclose(index.score(queries, subset), expected_subset, rtol=1e-12, atol=1e-12)


def test_lucene_idf_is_positive():
    documents, queries = small_corpus(0)
    index = BM25Index(documents, idf="lucene")
    assert (index.idf > 0).all()
    assert (index.score(queries) >= 0).all()


CODE = [
    ["def", "parse_qs", "(", "qs", ",", "keep_blank_values", ")", ":", "return", "dict", "(", "pairs", ")"],
    ["def", "urlencode", "(", "query", ",", "doseq", ")", ":", "return", "'&'", ".", "join", "(", "parts", ")"],
    ["def", "read_csv", "(", "path", ")", ":", "return", "Reader", "(", "open", "(", "path", ")", ")"],
    ["def", "sendMessage", "(", "self", ",", "msg", ")", ":", "self", ".", "socket", ".", "send", "(", "msg", ")"],
]
QUERIES = [
    "Parse a query string into a dict.",
    "Encode a query for a URL.",
    "Read a CSV file.",
    "Send a message on the socket.",
]


def test_obvious_match_ranks_first_and_splitting_helps():
    documents = [lexical_terms(code) for code in CODE]
    queries = [lexical_terms(query) for query in QUERIES]
    scores = BM25Index(documents).score(queries)  # (4, 4)
    assert scores.argmax(axis=1).tolist() == [0, 1, 2, 3]
    unsplit = BM25Index([lexical_terms(c, split_identifiers=False) for c in CODE])
    unsplit_scores = unsplit.score([lexical_terms(q, split_identifiers=False) for q in QUERIES])
    assert unsplit_scores[0, 0] < scores[0, 0]  # "parse" and "qs" only match parse_qs after splitting


def test_pair_scorer_in_codesearchnet_protocol():
    documents = [lexical_terms(code) for code in CODE]
    queries = [lexical_terms(query) for query in QUERIES]
    result = codesearchnet_eval(BM25Index(documents).pair_scorer(queries), 4, group_size=4, progress=False)
    assert result["mrr"] == 1.0
    scorer = BM25Index(documents).pair_scorer(queries)
    block = scorer(torch.tensor([2, 0]), torch.tensor([2, 0]))
    assert block.shape == (2, 2) and block[0, 0] > block[0, 1] and block[1, 1] > block[1, 0]
