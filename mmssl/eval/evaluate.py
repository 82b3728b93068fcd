"""Evaluate a trained model on a held-out split, with its baselines in the same run and table.

* :func:`evaluate_code`: the CodeSearchNet protocol (:mod:`mmssl.eval.codesearchnet`) on the code
  corpus, query = ``docstring``, item = ``code``: the model, BM25 (``docstring_tokens`` against
  ``code_tokens``, identifier splitting), MiniLM zero-shot (``all-MiniLM-L6-v2`` on both sides,
  256 tokens, its sentence-transformers setting) and the random ranking.
* :func:`evaluate_image`: for each built image corpus, text→image and image→text Recall@1/5/10 over
  the whole held-out gallery (:mod:`mmssl.eval.image_text`; query = each image's ``text``, relevance
  by identical normalised caption), with the random ranking beside.
* :func:`format_table`: the results as a readable table.

Every row records its wall time in seconds (encoding included). Locked text towers (MiniLM) go
through :class:`~mmssl.encoders.cache.FeatureCache`, so a second evaluation re-encodes nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from mmssl.data.corpus import load_corpus, split_file
from mmssl.data.paths import data_root
from mmssl.kinds import EVAL_CODE, EVAL_IMAGE, MODEL_CODE, MODEL_IMAGE_TEXT

CODE_CORPUS = "code"
CODE_GROUP_SIZE = 1000
MINILM_CODE_MAX_LENGTH = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
KS = (1, 5, 10)


def default_corpus_root() -> Path:
    """``<data root>/corpora``: the folder holding one folder per built corpus."""
    return data_root() / "corpora"


def _metric_row(name: str, metrics: dict, seconds: float, **extra) -> dict:
    row = {"name": name, "mrr": metrics["mrr"], **{f"recall@{k}": metrics[f"recall@{k}"] for k in KS}}
    row["seconds"] = round(seconds, 3)
    row.update(extra)
    return row


def _text_embeddings(model, texts: list[str], cache_root: Path | None, batch_size: int) -> np.ndarray:
    """The model's query embeddings; a locked query tower's features come from the feature cache."""
    dual = model.dual_encoder
    if not dual.query_tower.locked or model.fast_max_length(dual.query_tower) is not None:
        return model.encode_text(texts, batch_size)  # the cache holds full-length features only
    from mmssl.encoders.cache import FeatureCache
    from mmssl.model import _check_strings

    texts = _check_strings(texts, "text", "encode_text")
    features = FeatureCache(dual.query_tower, cache_root).features(texts, batch_size)  # (N, Dq)
    with torch.inference_mode():
        projection_device = dual.query_projection.weight.device
        return dual.project_query(features.to(projection_device)).float().cpu().numpy()  # (N, E)


def _minilm_codesearchnet(docstrings: list[str], codes: list[str], cache_root: Path | None, group_size: int,
                          seed: int, device: torch.device) -> dict:
    from mmssl.encoders import build_tower
    from mmssl.encoders.cache import FeatureCache
    from mmssl.eval.codesearchnet import codesearchnet_mrr

    tower = build_tower("minilm", pretrained="minilm", locked=True, max_length=MINILM_CODE_MAX_LENGTH).to(device)
    cache = FeatureCache(tower, cache_root)
    known = len(cache)
    queries = cache.features(docstrings)  # (Q, 384), unit rows
    code = cache.features(codes)  # (Q, 384)
    metrics = codesearchnet_mrr(queries, code, group_size, seed, KS)
    metrics["encoded"] = len(cache) - known  # the rest came from the feature cache
    return metrics


def evaluate_code(model_path: str | Path | None = None, split: str = "test", corpus_root: str | Path | None = None,
                  baselines: bool = True, *, group_size: int = CODE_GROUP_SIZE, seed: int = 0,
                  batch_size: int = 64, device: str | torch.device | None = None,
                  cache_root: str | Path | None = None, encoding: str = "fp32") -> dict:
    """CodeSearchNet-protocol MRR and Recall@1/5/10 of a code model and the baselines on one split.

    Args:
        model_path: a code model folder, or ``None`` for the baselines alone.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        corpus_root: the folder holding the corpus folders (``<corpus_root>/code/<split>.jsonl``);
            default ``<data root>/corpora``.
        baselines: add BM25, MiniLM zero-shot and random rows.
        group_size: pairs per group (1000 in CodeSearchNet); a split with fewer pairs is scored as one
            group of all of them, recorded in the result, so tiny corpora still evaluate.
        seed: grouping shuffle seed.
        batch_size: encoding batch size.
        device: default CUDA when present.
        cache_root: feature cache folder (default ``<data root>/cache/features``).
        encoding: how the model runs (``"fp32"`` or ``"fast"``, see :mod:`mmssl.model`).

    Returns:
        ``{"task": "code", "split", "corpus", "num_pairs", "protocol": {...}, "model": {...} | None,
        "rows": [{"name", "mrr", "recall@1", "recall@5", "recall@10", "seconds"}, ...]}``.

    Raises:
        ValueError: no model and no baselines, or the model is not a code model.
        mmssl.data.corpus.CorpusNotBuiltError: the split is missing.
    """
    from mmssl.eval.bm25 import BM25Index, lexical_terms
    from mmssl.eval.codesearchnet import codesearchnet_eval, codesearchnet_mrr
    from mmssl.model import default_device, load_model

    if model_path is None and not baselines:
        raise ValueError("nothing to evaluate: pass a model (--model PATH) or keep the baselines")
    corpus_root = Path(corpus_root) if corpus_root is not None else default_corpus_root()
    cache_root = Path(cache_root) if cache_root is not None else None
    device = torch.device(device) if device is not None else default_device()
    model = None
    if model_path is not None:  # load first: a wrong model should fail before minutes of baselines
        model = load_model(model_path, device=device, batch_size=batch_size, encoding=encoding)
        if model.kind != MODEL_CODE:
            raise ValueError(f"{model_path} is an {model.kind} model; evaluate it with --task image, "
                             "or pass a code model for --task code")

    records = load_corpus(CODE_CORPUS, split, corpus_root / CODE_CORPUS).to_list()
    if len(records) < 2:
        raise ValueError(f"{split_file(CODE_CORPUS, split, corpus_root / CODE_CORPUS)} holds {len(records)} pairs; "
                         "the protocol needs at least 2")
    docstrings, codes = [r["docstring"] for r in records], [r["code"] for r in records]
    group_size = min(group_size, len(records))

    rows: list[dict] = []
    protocol: dict = {}
    if model is not None:
        start = time.perf_counter()
        queries = _text_embeddings(model, docstrings, cache_root, batch_size)  # (Q, E)
        code = model.encode_code(codes, batch_size)  # (Q, E)
        metrics = codesearchnet_mrr(torch.from_numpy(queries), torch.from_numpy(code), group_size, seed, KS)
        rows.append(_metric_row(f"model ({Path(model_path).name})", metrics, time.perf_counter() - start,
                                kind="model"))
        protocol = metrics
    if baselines:
        start = time.perf_counter()
        index = BM25Index([lexical_terms(r["code_tokens"]) for r in records])
        scorer = index.pair_scorer([lexical_terms(r["docstring_tokens"]) for r in records])
        metrics = codesearchnet_eval(scorer, len(records), group_size, seed, KS, progress=False)
        rows.append(_metric_row("BM25", metrics, time.perf_counter() - start, kind="baseline"))
        protocol = protocol or metrics

        start = time.perf_counter()
        metrics = _minilm_codesearchnet(docstrings, codes, cache_root, group_size, seed, device)
        rows.append(_metric_row("MiniLM zero-shot", metrics, time.perf_counter() - start, kind="baseline",
                                encoded=metrics["encoded"], texts=2 * len(records)))
    rows.append(_metric_row("random", protocol["random"], 0.0, kind="baseline"))

    return {
        "task": EVAL_CODE,
        "split": split,
        "corpus": str(corpus_root / CODE_CORPUS),
        "num_pairs": len(records),
        "protocol": {key: protocol[key] for key in ("group_size", "num_groups", "num_queries", "num_dropped",
                                                     "seed", "ties")},
        "model": _model_info(model),
        "rows": rows,
    }


def _model_info(model) -> dict | None:
    if model is None:
        return None
    return {"path": str(model.path), "kind": model.kind, "fingerprint": model.fingerprint, "encoding": model.encoding,
            "embed_dim": model.embed_dim}


# The pooled row of the unseen split: every held-out set's icons whose concept is held out too
# (``concept_split`` valid/test), one gallery over all corpora. Icons of a held-out set whose concept
# is in train are scored in the per-corpus rows only: they test a new style, not a new concept.
UNSEEN_STYLE_ROW = "unseen-style"


def _image_corpora() -> tuple[str, ...]:
    from mmssl.data.build import IMAGE_CORPORA, LARGE_IMAGE_CORPORA

    return IMAGE_CORPORA + LARGE_IMAGE_CORPORA


def built_image_corpora(split: str, corpus_root: Path) -> list[str]:
    """The image corpora whose ``split`` is built under ``corpus_root``, in registry order."""
    return [name for name in _image_corpora() if (corpus_root / name / f"{split}.jsonl").is_file()]


def held_out_concepts(records: list[dict]) -> list[dict]:
    """The records whose concept is not in train (``concept_split`` valid or test; a record without
    the field is its own concept split)."""
    return [r for r in records if r.get("concept_split", r["split"]) != "train"]


def evaluate_image(model_path: str | Path, split: str = "test", corpora: list[str] | None = None,
                   corpus_root: str | Path | None = None, *, batch_size: int = 64,
                   device: str | torch.device | None = None, cache_root: str | Path | None = None,
                   encoding: str = "fp32") -> dict:
    """Text→image and image→text Recall@1/5/10 (and MRR) per image corpus, the random ranking beside.

    The gallery is every image of the corpus's ``split``; the queries are each image's ``text`` (its
    name), and an image is relevant to a text when its own ``text`` normalises to the same caption.
    With ``split="unseen"`` (whole icon sets and emoji artworks never trained on; the large corpora
    only) one more row, :data:`UNSEEN_STYLE_ROW`, pools the unseen icons of every corpus whose
    concept is held out too.

    Args:
        model_path: an image-text model folder.
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"unseen"``.
        corpora: image corpus names; default every built one (emoji, clipart, stamps, game-icons,
            iconsets, emoji-artworks).
        corpus_root: the folder holding the corpus folders; default ``<data root>/corpora``.
        batch_size, device, cache_root, encoding: as in :func:`evaluate_code`.

    Returns:
        ``{"task": "image", "split", "model": {...}, "corpora": {name: {"num_images", "text_to_image":
        {...}, "image_to_text": {...}, "seconds"}}, "rows": [...]}``; each row has ``corpus``, ``name``
        ("model" or "random"), ``text_to_image``/``image_to_text`` dicts of ``recall@K`` and ``mrr``,
        and ``seconds``.

    Raises:
        ValueError: no model, a code model, or no built image corpus.
    """
    from mmssl.data.splits import UNSEEN_SPLIT
    from mmssl.model import default_device, load_model

    if model_path is None:
        raise ValueError("image evaluation needs a model (--model PATH): its only baseline is the random "
                         "ranking, which is printed beside the model's rows")
    corpus_root = Path(corpus_root) if corpus_root is not None else default_corpus_root()
    cache_root = Path(cache_root) if cache_root is not None else None
    if corpora is None:
        corpora = built_image_corpora(split, corpus_root)
        if not corpora:
            raise ValueError(f"no image corpus has a built {split!r} split under {corpus_root}; run `python -m mmssl "
                             "data build emoji` (the unseen split: `make data-large`), or point --data-dir at a data "
                             "folder that has one")
    unknown = [name for name in corpora if name not in _image_corpora()]
    if unknown:
        raise ValueError(f"unknown image corpus {unknown}; known: {', '.join(_image_corpora())}")
    device = torch.device(device) if device is not None else default_device()
    model = load_model(model_path, device=device, batch_size=batch_size, encoding=encoding)
    if model.kind != MODEL_IMAGE_TEXT:
        raise ValueError(f"{model_path} is a {model.kind} model; evaluate it with --task code, "
                         "or pass an image-text model for --task image")

    rows: list[dict] = []
    per_corpus: dict[str, dict] = {}
    pooled: list[dict] = []
    for name in corpora:
        records = load_corpus(name, split, corpus_root / name).to_list()
        if not records:
            raise ValueError(f"{split_file(name, split, corpus_root / name)} is empty; rebuild the {name} corpus")
        per_corpus[name] = _score_image_corpus(model, name, records, rows, cache_root, batch_size)
        pooled += held_out_concepts(records)
    if split == UNSEEN_SPLIT and pooled:
        per_corpus[UNSEEN_STYLE_ROW] = _score_image_corpus(model, UNSEEN_STYLE_ROW, pooled, rows, cache_root, batch_size)
    return {"task": EVAL_IMAGE, "split": split, "corpus_root": str(corpus_root), "model": _model_info(model),
            "corpora": per_corpus, "rows": rows}


def _score_image_corpus(model, name: str, records: list[dict], rows: list[dict], cache_root: Path | None,
                        batch_size: int) -> dict:
    """Score one gallery, append its model and random rows to ``rows``, return its metrics."""
    from mmssl.eval.image_text import image_text_recall

    start = time.perf_counter()
    texts = [r["text"] for r in records]
    text_emb = _text_embeddings(model, texts, cache_root, batch_size)  # (N, E)
    image_emb = model.encode_image([r["image"] for r in records], batch_size)  # (N, E)
    metrics = image_text_recall(torch.from_numpy(text_emb), torch.from_numpy(image_emb), texts, ks=KS)
    seconds = round(time.perf_counter() - start, 3)
    directions = ("text_to_image", "image_to_text")
    rows.append({"corpus": name, "name": "model", "num_images": len(records), "seconds": seconds,
                 **{d: {k: v for k, v in metrics[d].items() if k != "random"} for d in directions}})
    rows.append({"corpus": name, "name": "random", "num_images": len(records), "seconds": 0.0,
                 **{d: metrics[d]["random"] for d in directions}})
    return {**metrics, "seconds": seconds}


def _fmt(value: float) -> str:
    return f"{value:.3f}" if value >= 0.001 or value == 0 else f"{value:.1e}"


def _table(header: list[str], lines: list[list[str]], left: int = 1) -> str:
    """Columns padded to their widest cell; the first ``left`` columns (names) left-aligned, numbers right."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines)]
    out = ["  ".join(cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
           for row in [header, *lines]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_table(results: dict) -> str:
    """The results of :func:`evaluate_code` or :func:`evaluate_image` as a plain-text table."""
    model = results.get("model")
    model_line = (f"model: {model['path']} ({model['kind']}, {model['fingerprint']}, E={model['embed_dim']}, "
                  f"{model.get('encoding', 'fp32')})"
                  if model else "model: none (baselines only)")
    if results["task"] == EVAL_CODE:
        p = results["protocol"]
        groups = f"{p['num_groups']} group{'s' if p['num_groups'] != 1 else ''} of {p['group_size']}"
        title = (f"CodeSearchNet protocol on {results['corpus']} [{results['split']}]: {results['num_pairs']} pairs, "
                 f"{groups} ({p['num_dropped']} dropped), seed {p['seed']}, {p['ties']} ties")
        header = ["method", "MRR", "R@1", "R@5", "R@10", "seconds"]
        lines = [[row["name"], *(_fmt(row[key]) for key in ("mrr", "recall@1", "recall@5", "recall@10")),
                  f"{row['seconds']:.1f}"] for row in results["rows"]]
        notes = [f"{row['name']}: {row['encoded']} new texts encoded, the rest of {row['texts']} read from the "
                 "feature cache"
                 for row in results["rows"] if "encoded" in row]
        return "\n".join([title, model_line, "", _table(header, lines), *notes])
    title = (f"Image-text retrieval [{results['split']}]: gallery = every image of the split, "
             "query = each image's name; relevance = same normalised caption")
    header = ["corpus", "method", "images", "T>I R@1", "R@5", "R@10", "I>T R@1", "R@5", "R@10", "seconds"]
    lines = []
    for row in results["rows"]:
        t2i, i2t = row["text_to_image"], row["image_to_text"]
        lines.append([row["corpus"], row["name"], str(row["num_images"]),
                      *(_fmt(t2i[f"recall@{k}"]) for k in KS), *(_fmt(i2t[f"recall@{k}"]) for k in KS),
                      f"{row['seconds']:.1f}"])
    return "\n".join([title, model_line, "", _table(header, lines, left=2)])
