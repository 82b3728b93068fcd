"""Full-corpus code search on developer-style queries: the dev set, its corpora, and the evaluation.

The dev set (:data:`DEFAULT_QUERY_FILE`, JSONL) holds queries written the way developers search
("turn a Decimal into an int if it is whole, else float"), not docstrings, each with its target
function and two labels:

* ``part`` -- ``"in-corpus"``: the target is in the code corpus's *test* split (packages/modules the
  models never trained on, from the corpus's sources); ``"out-of-corpus"``: the target is in an
  installed package outside the corpus's sources (``repo`` is its import name).
* ``split`` -- ``"dev"`` (choose models and fusion weights on it) or ``"test"`` (report on it). The
  split is by package / module group, so nothing of a test package is seen while choosing.

Each part is ranked over its **whole** corpus, not 1 of 1000: in-corpus over every function of the
code corpus test split; out-of-corpus over every function of all the dev set's out-of-corpus
packages, undocumented ones included (the extractor with ``require_docstring=False``). Metrics are
MRR and Recall@1/5/10 with pessimistic ties (:mod:`mmssl.eval.metrics`).

Systems: BM25 (:mod:`mmssl.eval.bm25`), MiniLM zero-shot, and code models, dense and hybrid
(:mod:`mmssl.eval.fusion`, the lexical weight chosen on the dev split), over both index-text
variants (:mod:`mmssl.data.code_text`). Embeddings are cached on disk (MiniLM through the feature
cache, models under ``<data root>/cache/code_search``), so a second run encodes nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmssl.data.code_text import INDEX_TEXTS, index_text, text_words

DEFAULT_QUERY_FILE = Path(__file__).resolve().parents[1] / "data" / "devset" / "code_queries.jsonl"
PARTS = ("in-corpus", "out-of-corpus")
QUERY_SPLITS = ("dev", "test")
QUERY_FIELDS = ("text", "part", "split", "repo", "path", "func_name")
KS = (1, 5, 10)
WEIGHT_GRID = tuple(round(0.05 * i, 2) for i in range(21))  # lexical weights tried on the dev split
MINILM_MAX_LENGTH = 256  # as in the CodeSearchNet-protocol baseline (sentence-transformers' setting)


class QueryFileError(ValueError):
    """A query file that cannot be read or whose targets do not resolve; the message names the line."""


# ------------------------------------------------------------------------------------ query file

def load_queries(path: str | Path = DEFAULT_QUERY_FILE) -> list[dict]:
    """The dev set's queries (JSONL, one object a line with :data:`QUERY_FIELDS`, ``line`` optional).

    Raises:
        QueryFileError: a line is not JSON, lacks a field, or has an unknown part or split.
    """
    path = Path(path)
    if not path.is_file():
        raise QueryFileError(f"no query file {path}; pass --queries FILE (JSONL with text, part, split, repo, path, "
                             "func_name per line)")
    queries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            query = json.loads(line)
        except json.JSONDecodeError as e:
            raise QueryFileError(f"{path}:{number}: not JSON ({e.msg})") from None
        missing = [f for f in QUERY_FIELDS if not str(query.get(f, "")).strip()]
        if missing:
            raise QueryFileError(f"{path}:{number}: missing {', '.join(missing)}; every query needs "
                                 f"{', '.join(QUERY_FIELDS)}")
        if query["part"] not in PARTS or query["split"] not in QUERY_SPLITS:
            raise QueryFileError(f"{path}:{number}: part must be one of {PARTS} and split one of {QUERY_SPLITS}, "
                                 f"got {query['part']!r} / {query['split']!r}")
        queries.append(query)
    if not queries:
        raise QueryFileError(f"{path} holds no queries")
    return queries


# ----------------------------------------------------------------------------------- corpora

def package_folder(name: str) -> Path:
    """The installed folder of the import package ``name`` (found without importing it).

    Raises:
        QueryFileError: not installed, not a package folder, or reserved (DESIGN.md §2).
    """
    from mmssl.data.reserved import is_reserved_code_package

    if is_reserved_code_package(name):
        raise QueryFileError(f"{name} is reserved for outside checks (mmssl.data.reserved); never evaluate on it")
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise QueryFileError(f"out-of-corpus package {name!r} is not an installed package folder; install it or "
                             "drop its queries")
    return Path(locations[0])


def out_of_corpus_records(packages: Sequence[str]) -> list[dict]:
    """Every function (documented or not) of ``packages``; ``repo`` is the import name, ``path`` is
    relative to the package folder."""
    from mmssl.data.code import extract_folder
    from mmssl.data.report import CorpusReport

    records = []
    for name in sorted(set(packages)):
        records += extract_folder(package_folder(name), CorpusReport("code"), repo=name, require_docstring=False)
    return records


def in_corpus_records(corpus_root: str | Path | None = None, split: str = "test") -> list[dict]:
    """The code corpus's ``split`` (default ``<data root>/corpora/code``)."""
    from mmssl.data.corpus import load_corpus

    root = Path(corpus_root) / "code" if corpus_root is not None else None
    return load_corpus("code", split, root).to_list()


def part_records(part: str, queries: Sequence[dict], corpus_root: str | Path | None = None) -> list[dict]:
    """The corpus a part's queries are ranked over (see the module docstring)."""
    if part == "in-corpus":
        return in_corpus_records(corpus_root)
    return out_of_corpus_records([q["repo"] for q in queries if q["part"] == "out-of-corpus"])


def subsample_corpus(records: Sequence[dict], queries: Sequence[dict], size: int | None, seed: int = 0) -> list[dict]:
    """``records`` cut to ``size`` functions: every query target plus a seeded uniform sample of the
    others, in corpus order (a documented, smaller corpus when embedding the whole one is too slow).
    ``size=None`` (or one at least the corpus size) keeps them all."""
    if size is None or size >= len(records):
        return list(records)
    keep = set(resolve_targets(queries, records).tolist())
    others = np.asarray([i for i in range(len(records)) if i not in keep], dtype=np.int64)
    sample = np.random.default_rng(seed).choice(others, size=max(0, size - len(keep)), replace=False)
    keep.update(sample.tolist())
    return [records[i] for i in sorted(keep)]


def resolve_targets(queries: Sequence[dict], records: Sequence[dict]) -> np.ndarray:
    """(Q,) index into ``records`` of each query's target, matched by repo, path and func_name (and
    ``line`` when a name occurs twice in a file).

    Raises:
        QueryFileError: a target matches no record or several (all such queries are listed).
    """
    where: dict[tuple[str, str, str], list[int]] = {}
    for i, record in enumerate(records):
        where.setdefault((record["repo"], record["path"], record["func_name"]), []).append(i)
    targets, problems = [], []
    for query in queries:
        found = where.get((query["repo"], query["path"], query["func_name"]), [])
        if len(found) > 1 and query.get("line") is not None:
            found = [i for i in found if records[i].get("line") == query["line"]]
        if len(found) != 1:
            problems.append(f"{query['repo']}:{query['path']}:{query['func_name']} ({len(found)} matches) "
                            f"for {query['text']!r}")
            continue
        targets.append(found[0])
    if problems:
        raise QueryFileError(f"{len(problems)} query target(s) do not resolve to exactly one function:\n  "
                             + "\n  ".join(problems))
    return np.asarray(targets, dtype=np.int64)


# ------------------------------------------------------------------------------------ systems

def bm25_scores(query_texts: Sequence[str], documents: Sequence[str]) -> np.ndarray:
    """(Q, N) BM25 scores of queries against document texts (identifiers split, whole kept)."""
    from mmssl.eval.bm25 import BM25Index, lexical_terms

    index = BM25Index([lexical_terms(text_words(doc)) for doc in documents])
    return index.score([lexical_terms(text_words(q)) for q in query_texts])


@dataclass
class DenseSystem:
    """A dense retriever: unit-row encoders for queries and for documents (index texts)."""

    name: str
    encode_queries: Callable[[list[str]], np.ndarray]
    encode_documents: Callable[[list[str]], np.ndarray]

    def scores(self, query_texts: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        queries = np.asarray(self.encode_queries(list(query_texts)), dtype=np.float32)  # (Q, E)
        docs = np.asarray(self.encode_documents(list(documents)), dtype=np.float32)  # (N, E)
        return queries @ docs.T  # (Q, N) cosines


def minilm_system(cache_root: str | Path | None = None, device: str | torch.device = "cpu",
                  encoding: str = "fp32") -> DenseSystem:
    """Zero-shot all-MiniLM-L6-v2 on both sides through the feature cache: 256 tokens (``"fp32"``),
    or the fast path's cap (``"fast"``, :data:`mmssl.model.FAST_MAX_LENGTH`; its own cache entries)."""
    from mmssl.encoders import build_tower
    from mmssl.encoders.cache import FeatureCache
    from mmssl.model import FAST, FAST_MAX_LENGTH, check_encoding

    max_length = FAST_MAX_LENGTH if check_encoding(encoding) == FAST else MINILM_MAX_LENGTH
    tower = build_tower("minilm", pretrained="minilm", locked=True, max_length=max_length).to(device)
    cache = FeatureCache(tower, Path(cache_root) if cache_root is not None else None)

    def encode(texts: list[str]) -> np.ndarray:
        return cache.features(texts).numpy()  # (N, 384), unit rows

    return DenseSystem("MiniLM zero-shot", encode, encode)


def _embedding_cache_dir(cache_root: str | Path | None) -> Path:
    from mmssl.data.paths import data_root

    return Path(cache_root) if cache_root is not None else data_root() / "cache" / "code_search"


def cached_embeddings(encode: Callable[[list[str]], np.ndarray], key: str, texts: list[str],
                      cache_dir: Path) -> np.ndarray:
    """``encode(texts)``, stored once under ``cache_dir`` by ``key`` (a model fingerprint) and the texts' hash."""
    digest = hashlib.sha1(key.encode())
    for text in texts:
        digest.update(hashlib.sha1(text.encode("utf-8", errors="surrogatepass")).digest())
    path = cache_dir / f"{digest.hexdigest()}.npy"
    if path.is_file():
        vectors = np.load(path)
        if vectors.shape[0] == len(texts):
            return vectors
    vectors = np.asarray(encode(texts), dtype=np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{path.stem}.{os.getpid()}.tmp.npy"
    np.save(tmp, vectors)
    os.replace(tmp, path)
    return vectors


def model_system(model_path: str | Path, cache_root: str | Path | None = None, batch_size: int = 64,
                 device: str | torch.device | None = None, feature_cache_root: str | Path | None = None,
                 encoding: str = "fp32") -> DenseSystem:
    """A saved code model (``load_model`` with ``encoding``); its documents' embeddings are cached on disk."""
    from mmssl.eval.evaluate import _text_embeddings
    from mmssl.model import FP32, load_model

    model = load_model(model_path, device=device, batch_size=batch_size, encoding=encoding)
    if model.kind != "code":
        raise ValueError(f"{model_path} is an {model.kind} model; the code search evaluation needs a code model")
    folder = model.fingerprint.replace(":", "-") + ("" if encoding == FP32 else f"-{encoding}")
    cache_dir = _embedding_cache_dir(cache_root) / folder
    feature_root = Path(feature_cache_root) if feature_cache_root is not None else None

    def encode_queries(texts: list[str]) -> np.ndarray:
        return _text_embeddings(model, texts, feature_root, batch_size)

    def encode_documents(texts: list[str]) -> np.ndarray:
        return cached_embeddings(lambda t: model.encode_code(t, batch_size), model.fingerprint, texts, cache_dir)

    return DenseSystem(_model_name(model_path), encode_queries, encode_documents)


def state_model_system(model_path: str | Path, state_root: str | Path | None = None,
                       batch_size: int = 64) -> DenseSystem:
    """A saved code model whose item tower has frozen layers, its documents encoded through the
    :class:`~mmssl.encoders.cache.StateCache`: the frozen part's token states of a text are computed
    once (shared with training and with every model of the same frozen start), so scoring another
    checkpoint runs only its trainable top layers -- the cheap way to compare training runs on the dev
    set. Equal to :func:`model_system` up to the cache's float16 states.

    Raises:
        ValueError: the model's item tower has no frozen layers.
    """
    from mmssl.data.pairs import pad_states
    from mmssl.encoders.cache import StateCache
    from mmssl.encoders.dual import load_dual_encoder

    model = load_dual_encoder(model_path).eval()
    tower = model.item_tower
    if not getattr(tower.config, "frozen_layers", 0):
        raise ValueError(f"{model_path}: the item tower has no frozen layers; use model_system")
    cache = StateCache(tower, Path(state_root) if state_root is not None else None)
    memo: dict[str, np.ndarray] = {}  # the last corpora encoded (an ensemble asks for them again)

    def encode_documents(texts: list[str]) -> np.ndarray:
        key = hashlib.sha1("\0".join(texts).encode("utf-8", errors="surrogatepass")).hexdigest()
        if key not in memo:
            memo[key] = _encode_from_states(texts)
        return memo[key]

    @torch.no_grad()
    def _encode_from_states(texts: list[str]) -> np.ndarray:
        cache.ensure(texts, progress=False)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch
        out = torch.zeros(len(texts), model.item_projection.out_features)  # (N, E)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            states, mask = pad_states([cache.states(texts[i]) for i in rows])  # (b, L, H), (b, L)
            out[rows] = model.project_item(tower.forward_from_states(states, mask))
        return out.numpy()

    def encode_queries(texts: list[str]) -> np.ndarray:
        return model.embed_queries(texts, batch_size).numpy()  # (Q, E)

    return DenseSystem(_model_name(model_path), encode_queries, encode_documents)


def _model_name(model_path: str | Path) -> str:
    """``model (<folder>)``; a folder named ``model`` (a training run's output, runs/<run>/model) by its run."""
    path = Path(model_path)
    return f"model ({path.parent.name if path.name == 'model' and path.parent.name else path.name})"


def code_model_system(model_path: str | Path, state_root: str | Path | None = None, use_states: bool = True,
                      batch_size: int = 64, encoding: str = "fast") -> DenseSystem:
    """A saved code model as a dense system: through the state cache (:func:`state_model_system`) when
    ``use_states`` and its item tower has frozen layers, else encoded in full (:func:`model_system`)."""
    if use_states:
        try:
            return state_model_system(model_path, state_root, batch_size)
        except ValueError:
            pass  # no frozen layers: the ordinary path
    return model_system(model_path, batch_size=batch_size, encoding=encoding)


@dataclass
class EnsembleSystem:
    """A score ensemble of two dense systems: ``alpha * tuned + (1 - alpha) * base`` cosines.

    Staying close to the start at query time: ``alpha`` 0 is ``base`` (e.g. MiniLM zero-shot),
    1 is ``tuned``. Both systems' embeddings are cached, so the ensemble costs no extra encoding.
    """

    name: str
    tuned: DenseSystem
    base: DenseSystem
    alpha: float

    def scores(self, query_texts: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        tuned = self.tuned.scores(query_texts, documents)  # (Q, N)
        base = self.base.scores(query_texts, documents)  # (Q, N)
        return self.alpha * tuned + (1.0 - self.alpha) * base


# ------------------------------------------------------------------------------------ metrics

def rank_metrics(scores: np.ndarray, targets: np.ndarray) -> dict:
    """MRR and Recall@K (pessimistic ties) of (Q, N) scores against (Q,) target indices, and each
    query's rank (``ranks``, in query order: what :func:`paired_bootstrap` resamples)."""
    from mmssl.eval.metrics import mrr_from_ranks, ranks_of_gold, recall_from_ranks

    if len(targets) == 0:
        return {"mrr": float("nan"), **{f"recall@{k}": float("nan") for k in KS}, "num_queries": 0, "ranks": []}
    ranks = ranks_of_gold(torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float64)),
                          torch.from_numpy(np.asarray(targets, dtype=np.int64)))
    out = {"mrr": mrr_from_ranks(ranks)}
    out.update({f"recall@{k}": v for k, v in recall_from_ranks(ranks, KS).items()})
    out["num_queries"] = len(targets)
    out["ranks"] = [int(r) for r in ranks]
    return out


def paired_bootstrap(ranks: dict[str, Sequence[int]], baseline: str, num_resamples: int = 2000,
                     seed: int = 0) -> dict[str, dict]:
    """How much of each system's MRR, and of its difference to ``baseline``, is the choice of queries.

    The queries are resampled with replacement ``num_resamples`` times (seeded), the same resample
    for every system (paired: a hard query is hard for all of them). Per system: ``mrr`` (on the
    queries as they are), ``sd`` (its bootstrap standard deviation), ``diff`` / ``diff_sd`` (MRR minus
    the baseline's, and its sd), ``p_better`` (the share of resamples where it beats the baseline).

    Args:
        ranks: system -> the 1-based rank of each query's target, every system over the same queries.
        baseline: the system the differences are taken against (a key of ``ranks``).

    Raises:
        ValueError: ``baseline`` is not a system, or the systems ranked different numbers of queries.
    """
    if baseline not in ranks:
        raise ValueError(f"baseline {baseline!r} is not one of the systems {sorted(ranks)}")
    lengths = {name: len(r) for name, r in ranks.items()}
    if len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
        raise ValueError(f"every system must rank the same, non-empty set of queries; got {lengths}")
    reciprocal = {name: 1.0 / np.asarray(r, dtype=np.float64) for name, r in ranks.items()}  # (Q,) each
    num_queries = lengths[baseline]
    samples = np.random.default_rng(seed).integers(0, num_queries, size=(num_resamples, num_queries))  # (R, Q)
    resampled = {name: rr[samples].mean(axis=1) for name, rr in reciprocal.items()}  # (R,) MRR per resample
    out = {}
    for name, mrrs in resampled.items():
        diffs = mrrs - resampled[baseline]  # (R,)
        out[name] = {"mrr": float(reciprocal[name].mean()), "sd": float(mrrs.std(ddof=1)),
                     "diff": float(reciprocal[name].mean() - reciprocal[baseline].mean()),
                     "diff_sd": float(diffs.std(ddof=1)), "p_better": float((diffs > 0).mean())}
    return out


@dataclass
class PartScores:
    """One part's (Q, N) scores of every system, the targets, and each query's split."""

    targets: np.ndarray  # (Q,)
    splits: np.ndarray  # (Q,) "dev" / "test"
    lexical: dict[str, np.ndarray]  # index text -> (Q, N) BM25
    dense: dict[tuple[str, str], np.ndarray]  # (system, index text) -> (Q, N)


def _split_rows(part: PartScores, split: str) -> np.ndarray:
    return np.flatnonzero(part.splits == split)


def choose_weight(parts: Sequence[PartScores], system: str, text: str, method: str,
                  grid: Sequence[float] = WEIGHT_GRID) -> tuple[float, float]:
    """The lexical weight with the best dev MRR (mean over parts, each part counted once) and that MRR."""
    from mmssl.eval.fusion import fuse_scores

    best = (0.0, -1.0)
    for weight in grid:
        mrrs = []
        for part in parts:
            rows = _split_rows(part, "dev")
            if len(rows):
                fused = fuse_scores(part.dense[(system, text)][rows], part.lexical[text][rows], weight, method)
                mrrs.append(rank_metrics(fused, part.targets[rows])["mrr"])
        mean = float(np.mean(mrrs)) if mrrs else -1.0
        if mean > best[1] + 1e-12:
            best = (float(weight), mean)
    return best


def _rows_for(name: str, text: str, weight: float | None, per_part: dict[str, np.ndarray],
              parts: dict[str, PartScores]) -> list[dict]:
    rows = []
    for part_name, scores in per_part.items():
        part = parts[part_name]
        for split in QUERY_SPLITS:
            idx = _split_rows(part, split)
            rows.append({"system": name, "index_text": text, "lexical_weight": weight, "part": part_name,
                         "split": split, **rank_metrics(scores[idx], part.targets[idx])})
    return rows


def evaluate_queries(queries: Sequence[dict], systems: Sequence[DenseSystem], *,
                     corpus_root: str | Path | None = None, texts: Sequence[str] = INDEX_TEXTS,
                     fusion: str = "minmax", records: dict[str, list[dict]] | None = None,
                     bm25: bool = True) -> dict:
    """Full-corpus MRR / Recall@K of BM25 and each dense system, dense and hybrid, per part and split.

    Args:
        queries: the dev set (:func:`load_queries`).
        systems: dense retrievers (:func:`minilm_system`, :func:`model_system`).
        corpus_root: folder holding ``code/`` (the in-corpus part); default ``<data root>/corpora``.
        texts: index-text variants to evaluate.
        fusion: ``"minmax"`` or ``"rrf"``; the hybrid's lexical weight is chosen on the dev split.
        records: corpora per part, to skip extraction (tests pass tiny hand-made ones).
        bm25: add BM25 alone (the lexical side always runs when there are dense systems).

    Returns:
        ``{"task": "code-queries", "num_queries", "corpora", "fusion", "rows": [...]}``; each row has
        ``system``, ``index_text``, ``lexical_weight`` (None: not fused), ``part``, ``split``, ``mrr``,
        ``recall@1/5/10``, ``num_queries``.
    """
    start = time.perf_counter()
    parts: dict[str, PartScores] = {}
    corpora = {}
    for part_name in PARTS:
        part_queries = [q for q in queries if q["part"] == part_name]
        if not part_queries:
            continue
        part_corpus = (records or {}).get(part_name)
        if part_corpus is None:
            part_corpus = part_records(part_name, queries, corpus_root)
        targets = resolve_targets(part_queries, part_corpus)
        query_texts = [q["text"] for q in part_queries]
        lexical, dense = {}, {}
        for text in texts:
            documents = [index_text(r, text) for r in part_corpus]
            lexical[text] = bm25_scores(query_texts, documents)
            for system in systems:
                dense[(system.name, text)] = system.scores(query_texts, documents)
        parts[part_name] = PartScores(targets, np.asarray([q["split"] for q in part_queries]), lexical, dense)
        corpora[part_name] = {"num_functions": len(part_corpus),
                              "repos": sorted({r["repo"] for r in part_corpus}) if part_name == "out-of-corpus"
                              else ["code corpus test split"]}
    from mmssl.eval.fusion import fuse_scores

    rows = []
    for text in texts:
        if bm25:
            rows += _rows_for("BM25", text, None, {p: s.lexical[text] for p, s in parts.items()}, parts)
        for system in systems:
            rows += _rows_for(system.name, text, None, {p: s.dense[(system.name, text)] for p, s in parts.items()},
                              parts)
            weight, _ = choose_weight(list(parts.values()), system.name, text, fusion)
            fused = {p: fuse_scores(s.dense[(system.name, text)], s.lexical[text], weight, fusion)
                     for p, s in parts.items()}
            rows += _rows_for(f"{system.name} + BM25", text, weight, fused, parts)
    counts = {f"{p}/{s}": sum(1 for q in queries if q["part"] == p and q["split"] == s)
              for p in PARTS for s in QUERY_SPLITS}
    return {"task": "code-queries", "num_queries": counts, "corpora": corpora,
            "fusion": {"method": fusion, "grid": list(WEIGHT_GRID), "chosen_on": "dev"},
            "seconds": round(time.perf_counter() - start, 1), "rows": rows}


def bootstrap_rows(results: dict, split: str = "dev", baseline: str = "MiniLM zero-shot", num_resamples: int = 2000,
                   seed: int = 0) -> list[dict]:
    """:func:`paired_bootstrap` of the rows of :func:`evaluate_queries` for one query split, per part and
    index text: dense systems (BM25 included) against ``baseline``, hybrids against ``baseline + BM25``.

    Each row: ``part``, ``index_text``, ``split``, ``system``, ``hybrid``, ``baseline``, ``num_queries`` and
    the statistics of :func:`paired_bootstrap`. A group without its baseline is left out.
    """
    groups: dict[tuple, dict[str, list[int]]] = {}
    for row in results["rows"]:
        if row["split"] == split and row["num_queries"]:
            key = (row["part"], row["index_text"], row["lexical_weight"] is not None)
            groups.setdefault(key, {})[row["system"]] = row["ranks"]
    out = []
    for (part, text, hybrid), ranks in groups.items():
        base = f"{baseline} + BM25" if hybrid else baseline
        if base not in ranks:
            continue
        for system, stats in paired_bootstrap(ranks, base, num_resamples, seed).items():
            out.append({"part": part, "index_text": text, "split": split, "system": system, "hybrid": hybrid,
                        "baseline": base, "num_queries": len(ranks[base]), **stats})
    return out


def format_query_table(results: dict) -> str:
    """The rows of :func:`evaluate_queries` as a table: one line per system and index text."""
    from mmssl.eval.evaluate import _fmt, _table

    by_system: dict[tuple, dict] = {}
    for row in results["rows"]:
        key = (row["system"], row["index_text"], row["lexical_weight"])
        by_system.setdefault(key, {})[(row["part"], row["split"])] = row
    header = ["system", "text", "w", "in dev MRR", "in test MRR", "R@1", "R@10", "out dev MRR", "out test MRR",
              "R@1", "R@10"]
    lines = []
    for (system, text, weight), cells in by_system.items():
        line = [system, text, "-" if weight is None else f"{weight:.2f}"]
        for part in PARTS:
            dev, test = cells.get((part, "dev")), cells.get((part, "test"))
            line += [_fmt(dev["mrr"]) if dev and dev["num_queries"] else "-"]
            line += [_fmt(test[k]) if test and test["num_queries"] else "-" for k in ("mrr", "recall@1", "recall@10")]
        lines.append(line)
    corpora = ", ".join(f"{p}: {c['num_functions']} functions" for p, c in results["corpora"].items())
    counts = ", ".join(f"{k} {v}" for k, v in results["num_queries"].items())
    title = (f"Code search on developer-style queries, full-corpus ranking ({corpora}); queries: {counts}; "
             f"hybrid = {results['fusion']['method']} fusion, lexical weight w chosen on dev")
    return "\n".join([title, "", _table(header, lines, left=2)])
