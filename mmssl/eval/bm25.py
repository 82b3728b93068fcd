"""Okapi BM25 over code tokens: the lexical baseline for code search (sparse, vectorised).

score(q, d) = sum over query terms t (repeats counted, as in ``rank_bm25``) of
    idf(t) * tf(t, d) * (k1 + 1) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))

with ``k1 = 1.2, b = 0.75`` and, by default, ``rank_bm25.BM25Okapi``'s IDF:
``ln((N - n_t + 0.5) / (n_t + 0.5))``, where a negative IDF (a term in more than half the documents)
is replaced by ``epsilon * mean IDF`` (``epsilon = 0.25``). ``idf="lucene"`` uses
``ln(1 + (N - n_t + 0.5) / (n_t + 0.5))`` instead, which is never negative. Scores equal
``BM25Okapi(documents, k1=1.2, b=0.75).get_scores`` (tested); ``|d|`` counts every term of the
document, as there.

Why not ``rank_bm25`` itself: it scores one query at a time with a Python loop over every document's
term dict; here the documents are one sparse ``(N, V)`` matrix of per-term BM25 weights and a batch
of queries is one sparse product, so a 1000 x 1000 CodeSearchNet group takes milliseconds.

Terms: code tokens are lowercased and, with ``split_identifiers=True``, split on snake_case,
camelCase and other non-alphanumerics so "parse query string" meets ``parse_qs`` /
``parseQueryString``, and (``keep_whole=True``) the whole identifier is kept beside its parts so an
exact identifier in the query still counts; tokens without a letter or digit (punctuation) are
dropped on both sides. The same analyser runs on queries and on code.

On the held-out code split, splitting identifiers raises the CodeSearchNet-protocol MRR far above
whole-token BM25, and keeping the whole tokens as well adds a little (README gives the numbers).
The whole protocol runs in a fraction of what ``rank_bm25`` needs for one group.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse
import torch

from mmssl.eval.codesearchnet import ScoreFn

_NON_ALNUM = re.compile(r"[\W_]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
IDF_KINDS = ("okapi", "lucene")


def split_identifier(token: str) -> list[str]:
    """Lowercased parts of an identifier: ``parse_qs`` -> [parse, qs], ``HTTPServer`` -> [http, server].

    Digits stay attached (``utf8``, ``sha256``); punctuation-only tokens give ``[]``.
    """
    parts = []
    for piece in _NON_ALNUM.split(token):
        parts.extend(part.lower() for part in _CAMEL_BOUNDARY.split(piece) if part)
    return parts


def lexical_terms(
    tokens: str | Sequence[str], split_identifiers: bool = True, keep_whole: bool = True
) -> list[str]:
    """BM25 terms of a query or a piece of code.

    Args:
        tokens: a string (split on whitespace) or a token list (CodeSearchNet's ``code_tokens`` /
            ``docstring_tokens``).
        split_identifiers: split identifiers into their parts (see ``split_identifier``).
        keep_whole: with splitting, also keep the whole lowercased token when it has several parts.

    Returns:
        Lowercased terms, in order, repeats kept.
    """
    if isinstance(tokens, str):
        tokens = tokens.split()
    terms = []
    for token in tokens:
        if split_identifiers:
            parts = split_identifier(token)
            terms.extend(parts)
            if keep_whole and len(parts) > 1:
                terms.append(token.lower())
        elif _NON_ALNUM.sub("", token):
            terms.append(token.lower())
    return terms


class BM25Index:
    """BM25 weights of a fixed document collection as one sparse (N, V) matrix.

    Args:
        documents: N documents, each a list of terms (see ``lexical_terms``).
        k1: term-frequency saturation.
        b: length normalisation.
        idf: "okapi" (``rank_bm25``'s, with the epsilon floor) or "lucene".
        epsilon: floor of negative Okapi IDFs, as a fraction of the mean IDF.
    """

    def __init__(
        self,
        documents: Sequence[Sequence[str]],
        k1: float = 1.2,
        b: float = 0.75,
        idf: str = "okapi",
        epsilon: float = 0.25,
    ) -> None:
        if not documents:
            raise ValueError("BM25 needs at least one document")
        if idf not in IDF_KINDS:
            raise ValueError(f"idf must be one of {IDF_KINDS}, got {idf!r}")
        self.k1, self.b, self.idf_kind, self.epsilon = k1, b, idf, epsilon
        self.vocabulary: dict[str, int] = {}
        rows, cols = [], []
        for doc_id, document in enumerate(documents):
            for term in document:
                rows.append(doc_id)
                cols.append(self.vocabulary.setdefault(term, len(self.vocabulary)))
        num_docs, num_terms = len(documents), max(1, len(self.vocabulary))
        term_counts = scipy.sparse.csr_matrix(
            (np.ones(len(rows)), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
            shape=(num_docs, num_terms),
        )  # (N, V) tf, duplicates summed
        term_counts.sum_duplicates()
        doc_lengths = np.asarray([len(document) for document in documents], dtype=np.float64)  # (N,)
        self.doc_lengths = doc_lengths
        self.avgdl = float(doc_lengths.mean()) or 1.0

        doc_freq = np.bincount(term_counts.indices, minlength=num_terms).astype(np.float64)  # (V,)
        ratio = (num_docs - doc_freq + 0.5) / (doc_freq + 0.5)  # (V,)
        if idf == "okapi":
            self.idf = np.log(ratio)  # (V,)
            self.idf[self.idf < 0] = epsilon * self.idf.mean()
        else:
            self.idf = np.log1p(ratio)  # (V,)

        tf = term_counts.data  # (nnz,)
        length_norm = k1 * (1 - b + b * doc_lengths / self.avgdl)  # (N,)
        row_of_entry = np.repeat(np.arange(num_docs), np.diff(term_counts.indptr))  # (nnz,)
        weights = self.idf[term_counts.indices] * tf * (k1 + 1) / (tf + length_norm[row_of_entry])  # (nnz,)
        self.weights = scipy.sparse.csr_matrix(
            (weights, term_counts.indices, term_counts.indptr), shape=term_counts.shape
        )  # (N, V)

    def query_matrix(self, queries: Sequence[Sequence[str]]) -> scipy.sparse.csr_matrix:
        """(Q, V) counts of each query's terms; terms outside the vocabulary score 0 and are dropped."""
        rows, cols = [], []
        for query_id, query in enumerate(queries):
            for term in query:
                term_id = self.vocabulary.get(term)
                if term_id is not None:
                    rows.append(query_id)
                    cols.append(term_id)
        matrix = scipy.sparse.csr_matrix(
            (np.ones(len(rows)), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
            shape=(len(queries), self.weights.shape[1]),
        )
        matrix.sum_duplicates()
        return matrix

    def score(
        self,
        queries: Sequence[Sequence[str]] | scipy.sparse.csr_matrix,
        candidate_ids: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    ) -> np.ndarray:
        """BM25 scores of queries against all documents or a subset.

        Args:
            queries: Q term lists, or a ``query_matrix``.
            candidate_ids: C document indices; ``None`` scores all N.

        Returns:
            (Q, C) float64 scores (C = N without ``candidate_ids``).
        """
        if not scipy.sparse.issparse(queries):
            queries = self.query_matrix(queries)
        weights = self.weights if candidate_ids is None else self.weights[np.asarray(candidate_ids, dtype=np.int64)]
        return np.asarray((queries @ weights.T).todense())  # (Q, C)

    def pair_scorer(self, queries: Sequence[Sequence[str]]) -> ScoreFn:
        """Score function for ``codesearchnet_eval``: query i's gold is document i."""
        query_matrix = self.query_matrix(queries)  # (Q, V)

        def score_fn(query_indices: torch.Tensor, candidate_indices: torch.Tensor) -> torch.Tensor:
            rows = query_matrix[np.asarray(query_indices, dtype=np.int64)]  # (G, V)
            return torch.from_numpy(self.score(rows, candidate_indices))  # (G, G)

        return score_fn


def mine_bm25_negatives(queries: list[str], items: list[str], top_k: int = 10, seed: int = 0,
                        chunk: int = 256) -> list[str]:
    """One hard negative item per pair: a seeded pick among the ``top_k`` BM25 hits of query i over the
    distinct items that are not its own item ``items[i]`` (the words a developer would match on, in the
    wrong function). A query without any lexical hit gets a seeded random other item.

    Args:
        queries: N query texts; ``items``: their N item texts (repeats allowed: several views per function).
        top_k: how deep in the BM25 ranking the negative is drawn (1: always the top wrong hit).

    Returns:
        N item texts, ``negatives[i] != items[i]``.

    Raises:
        ValueError: unequal lengths, ``top_k`` < 1, or fewer than 2 distinct items.
    """
    from mmssl.data.code_text import text_words

    distinct = list(dict.fromkeys(items))
    if len(queries) != len(items) or top_k < 1 or len(distinct) < 2:
        raise ValueError(f"need one item per query ({len(queries)} queries, {len(items)} items), top_k >= 1 "
                         f"(got {top_k}) and at least 2 distinct items (got {len(distinct)})")
    position = {text: j for j, text in enumerate(distinct)}
    own = np.asarray([position[text] for text in items])  # (N,)
    index = BM25Index([lexical_terms(text_words(text)) for text in distinct])
    rng = np.random.default_rng(seed)
    depth = min(top_k, len(distinct) - 1)
    negatives = []
    for start in range(0, len(queries), chunk):
        scores = index.score([lexical_terms(text_words(q)) for q in queries[start:start + chunk]])  # (c, U)
        rows = np.arange(len(scores))
        scores[rows, own[start:start + chunk]] = -np.inf  # never the pair's own item
        top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]  # (c, depth), unordered
        for row, hits in zip(rows, top):
            hits = hits[scores[row, hits] > 0]
            if len(hits) == 0:  # no shared word: any other item
                hits = np.flatnonzero(np.arange(len(distinct)) != own[start + row])
            negatives.append(distinct[int(rng.choice(hits))])
    return negatives
