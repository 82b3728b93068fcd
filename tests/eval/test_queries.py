"""Full-corpus query evaluation and score fusion on tiny hand-made data, checked against hand-computed
ranks."""

import numpy as np
import pytest

from mmssl.eval.fusion import fuse_scores, minmax_rows, ranks_desc
from mmssl.eval.queries import (
    DenseSystem,
    EnsembleSystem,
    QueryFileError,
    bootstrap_rows,
    cached_embeddings,
    evaluate_queries,
    paired_bootstrap,
    rank_metrics,
    resolve_targets,
)

RECORDS = [
    {"repo": "tiny", "path": "query.py", "func_name": "parse_query", "line": 1,
     "code": "def parse_query(s):\n    return dict(pair.split('=') for pair in s.split('&'))"},
    {"repo": "tiny", "path": "proc.py", "func_name": "wait_process", "line": 1,
     "code": "def wait_process(proc, timeout):\n    return proc.wait(timeout)"},
    {"repo": "tiny", "path": "files.py", "func_name": "read_file", "line": 1,
     "code": "def read_file(path):\n    return open(path).read()"},
]
QUERIES = [
    {"text": "wait for a process with timeout", "func_name": "wait_process", "path": "proc.py", "split": "dev"},
    {"text": "parse query string into dict", "func_name": "parse_query", "path": "query.py", "split": "dev"},
    # BM25: only parse_query holds "split"; read_file and wait_process tie at 0 -> pessimistic rank 3
    {"text": "split a string on ampersands", "func_name": "read_file", "path": "files.py", "split": "test"},
]
QUERIES = [{**q, "repo": "tiny", "part": "out-of-corpus"} for q in QUERIES]


def one_hot_system() -> DenseSystem:
    """A dense stand-in that always ranks read_file first: the fusion has two different sides."""
    def docs(texts):
        return np.asarray([[1.0, 0.0] if "read_file" in t else [0.0, 1.0] for t in texts])

    return DenseSystem("stub", lambda texts: np.tile([1.0, 0.0], (len(texts), 1)), docs)


def test_targets_resolve_and_unknown_ones_are_listed():
    assert resolve_targets(QUERIES, RECORDS).tolist() == [1, 0, 2]
    with pytest.raises(QueryFileError, match="nope.py:x"):
        resolve_targets([{**QUERIES[0], "path": "nope.py", "func_name": "x"}], RECORDS)


def test_bm25_mrr_equals_the_hand_computed_one():
    results = evaluate_queries(QUERIES, [], texts=("code",), records={"out-of-corpus": RECORDS})
    rows = {(r["system"], r["split"]): r for r in results["rows"]}
    assert rows[("BM25", "dev")]["mrr"] == pytest.approx(1.0)  # ranks 1, 1
    assert rows[("BM25", "test")]["mrr"] == pytest.approx(1 / 3)  # rank 3
    assert rows[("BM25", "test")]["recall@1"] == 0.0 and rows[("BM25", "test")]["recall@5"] == 1.0
    assert results["corpora"]["out-of-corpus"]["num_functions"] == 3


def test_dense_and_hybrid_rows_with_the_weight_chosen_on_dev():
    results = evaluate_queries(QUERIES, [one_hot_system()], texts=("code",), records={"out-of-corpus": RECORDS})
    rows = {(r["system"], r["split"]): r for r in results["rows"]}
    # dense: read_file first for every query, the rest tied -> dev ranks 3, 3; test rank 1
    assert rows[("stub", "dev")]["mrr"] == pytest.approx(1 / 3)
    assert rows[("stub", "test")]["mrr"] == pytest.approx(1.0)
    hybrid_dev, hybrid_test = rows[("stub + BM25", "dev")], rows[("stub + BM25", "test")]
    assert hybrid_dev["lexical_weight"] > 0.5  # BM25 is right on both dev queries: it wins the weight
    assert hybrid_dev["mrr"] == pytest.approx(1.0)
    # test: fused = (1-w) * dense + w * bm25; read_file keeps dense 1 and bm25 0 -> below parse_query for w > 0.5
    assert hybrid_test["mrr"] == pytest.approx(0.5)


def test_fusion_with_lexical_weight_zero_ranks_as_dense_and_one_as_lexical():
    rng = np.random.default_rng(0)
    dense, lexical = rng.normal(size=(5, 40)), rng.exponential(size=(5, 40))
    for method in ("minmax", "rrf"):
        assert (ranks_desc(fuse_scores(dense, lexical, 0.0, method)) == ranks_desc(dense)).all()
        assert (ranks_desc(fuse_scores(dense, lexical, 1.0, method)) == ranks_desc(lexical)).all()
        assert not (ranks_desc(fuse_scores(dense, lexical, 0.5, method)) == ranks_desc(dense)).all()


def test_minmax_and_rrf_values():
    assert minmax_rows(np.array([[2.0, 4.0, 3.0], [1.0, 1.0, 1.0]])).tolist() == [[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]
    assert ranks_desc(np.array([[0.1, 0.9, 0.5]])).tolist() == [[3, 1, 2]]
    fused = fuse_scores(np.array([[0.1, 0.9]]), np.array([[5.0, 1.0]]), 0.5, "rrf")
    assert fused[0].tolist() == pytest.approx([0.5 / 62 + 0.5 / 61, 0.5 / 61 + 0.5 / 62])
    with pytest.raises(ValueError, match=r"lexical_weight must be in \[0, 1\]"):
        fuse_scores(np.zeros((1, 2)), np.zeros((1, 2)), 1.5)


def test_rank_metrics_counts_ties_against_the_gold():
    scores = np.array([[0.5, 0.5, 0.1], [0.0, 0.2, 0.9]])
    metrics = rank_metrics(scores, np.array([0, 2]))
    assert metrics["mrr"] == pytest.approx((1 / 2 + 1) / 2)
    assert metrics["recall@1"] == 0.5
    assert metrics["ranks"] == [2, 1]


def test_paired_bootstrap_sd_is_the_standard_error_and_a_shared_resample_cancels_query_difficulty():
    rng = np.random.default_rng(1)
    base = rng.integers(1, 20, size=200)  # ranks of 200 queries
    better = np.maximum(base - 1, 1)  # the same queries, each one place higher (or still first)
    stats = paired_bootstrap({"base": base, "better": better, "same": base.copy()}, "base", 4000, seed=3)
    reciprocal = 1.0 / base
    assert stats["base"]["mrr"] == pytest.approx(reciprocal.mean())
    assert stats["base"]["sd"] == pytest.approx(reciprocal.std(ddof=1) / np.sqrt(200), rel=0.08)
    gain = 1.0 / better - reciprocal  # (Q,) per-query gain, never negative
    assert stats["better"]["diff"] == pytest.approx(gain.mean())
    assert stats["better"]["diff_sd"] == pytest.approx(gain.std(ddof=1) / np.sqrt(200), rel=0.08)
    assert stats["better"]["diff_sd"] < stats["better"]["sd"] / 2  # paired: far tighter than either MRR
    assert stats["better"]["p_better"] == 1.0
    assert stats["same"]["diff"] == 0.0 and stats["same"]["diff_sd"] == 0.0 and stats["same"]["p_better"] == 0.0
    assert paired_bootstrap({"base": base, "better": better}, "base", 4000, seed=3)["better"] == stats["better"]
    with pytest.raises(ValueError, match="baseline 'nope'"):
        paired_bootstrap({"base": base}, "nope")
    with pytest.raises(ValueError, match="same, non-empty set"):
        paired_bootstrap({"base": base, "short": base[:5]}, "base")


def test_bootstrap_rows_compare_dense_with_the_dense_baseline_and_hybrids_with_the_hybrid_one():
    stub = one_hot_system()
    baseline = DenseSystem("MiniLM zero-shot", stub.encode_queries, stub.encode_documents)
    results = evaluate_queries(QUERIES, [baseline, one_hot_system()], texts=("code",),
                               records={"out-of-corpus": RECORDS})
    rows = {(r["system"], r["hybrid"]): r for r in bootstrap_rows(results, "dev", num_resamples=200)}
    assert set(rows) == {("BM25", False), ("MiniLM zero-shot", False), ("stub", False),
                         ("MiniLM zero-shot + BM25", True), ("stub + BM25", True)}
    assert rows[("stub", False)]["baseline"] == "MiniLM zero-shot" and rows[("stub", False)]["diff"] == 0.0
    assert rows[("stub + BM25", True)]["baseline"] == "MiniLM zero-shot + BM25"
    # dev: BM25 ranks 1, 1; the dense stub 3, 3 -> BM25 is 2/3 ahead on every resample
    assert rows[("BM25", False)]["diff"] == pytest.approx(2 / 3) and rows[("BM25", False)]["p_better"] == 1.0
    assert all(r["num_queries"] == 2 and r["split"] == "dev" for r in rows.values())


def test_cached_embeddings_encode_once(tmp_path):
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.arange(len(texts) * 2, dtype=np.float32).reshape(len(texts), 2)

    first = cached_embeddings(encode, "model-a", ["x", "y"], tmp_path)
    again = cached_embeddings(encode, "model-a", ["x", "y"], tmp_path)
    other = cached_embeddings(encode, "model-b", ["x", "y"], tmp_path)
    assert calls == [["x", "y"], ["x", "y"]]  # model-b is another key
    assert (first == again).all() and (first == other).all()


def test_cli_eval_queries_ranks_the_corpus_test_split(tmp_path, capsys):
    """``mmssl eval --task code --queries FILE``: in-corpus queries over ``<data>/corpora/code/test.jsonl``."""
    import json

    from tiny_models import save_tiny_code_model

    from mmssl.cli import main

    corpus = tmp_path / "data" / "corpora" / "code"
    corpus.mkdir(parents=True)
    records = [{**r, "original_string": r["code"], "docstring": ""} for r in RECORDS]
    (corpus / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({**q, "part": "in-corpus"}) + "\n" for q in QUERIES))
    model = save_tiny_code_model(tmp_path / "code-tiny")
    argv = ["eval", "--task", "code", "--queries", str(queries), "--model", str(model), "--no-baselines",
            "--index-text", "code", "--data-dir", str(tmp_path / "data"), "--device", "cpu", "--json"]
    assert main(argv) == 0
    results = json.loads(capsys.readouterr().out)
    rows = {(r["system"], r["split"]): r for r in results["rows"]}
    assert rows[("BM25", "dev")]["mrr"] == pytest.approx(1.0) and rows[("BM25", "test")]["mrr"] == pytest.approx(1 / 3)
    assert {r["system"] for r in results["rows"]} == {"BM25", "model (code-tiny)", "model (code-tiny) + BM25"}
    assert results["corpora"]["in-corpus"]["num_functions"] == 3


def test_score_ensemble_mixes_cosines_and_its_ends_are_the_two_systems():
    tuned, base = one_hot_system(), DenseSystem("base", lambda t: np.tile([0.6, 0.8], (len(t), 1)),
                                                lambda t: np.tile([0.0, 1.0], (len(t), 1)))
    texts = [r["code"] for r in RECORDS]
    tuned_scores = tuned.scores(["q"], texts)  # [[0, 0, 1]]: read_file is the third record
    base_scores = base.scores(["q"], texts)  # [[0.8, 0.8, 0.8]]
    np.testing.assert_allclose(EnsembleSystem("e", tuned, base, 0.25).scores(["q"], texts), [[0.6, 0.6, 0.85]])
    np.testing.assert_allclose(EnsembleSystem("e", tuned, base, 1.0).scores(["q"], texts), tuned_scores)
    np.testing.assert_allclose(EnsembleSystem("e", tuned, base, 0.0).scores(["q"], texts), base_scores)
    results = evaluate_queries(QUERIES, [EnsembleSystem("e", tuned, base, 0.5)], texts=("code",),
                               records={"out-of-corpus": RECORDS}, bm25=False)
    test_row = next(r for r in results["rows"] if r["system"] == "e" and r["split"] == "test")
    assert test_row["mrr"] == pytest.approx(1.0)  # read_file 0.9 vs 0.4: the tuned side decides


def test_state_model_system_equals_the_full_forward_and_reuses_the_states(tmp_path):
    import torch

    from mmssl.encoders import DualEncoderConfig, TowerConfig, build_dual_encoder, save_dual_encoder
    from mmssl.encoders.dual import load_dual_encoder
    from mmssl.eval.queries import state_model_system
    from tests.tiny_models import save_tiny_code_model

    torch.manual_seed(0)
    config = DualEncoderConfig(query=TowerConfig(name="minilm", pretrained="minilm", locked=True, max_length=32),
                               item=TowerConfig(name="minilm", pretrained="minilm", max_length=64, frozen_layers=5),
                               embed_dim=384, projection_init="identity")
    model = build_dual_encoder(config)
    with torch.no_grad():
        for p in model.item_tower.bert.encoder.layer[5].parameters():
            p.add_(0.05 * torch.randn_like(p))  # a "trained" top layer: not MiniLM's any more
    folder = save_dual_encoder(model, tmp_path / "model", config)
    texts = [r["code"] for r in RECORDS] + ["class A:\n    pass\n" * 30]
    system = state_model_system(folder, state_root=tmp_path / "states", batch_size=2)
    expected = load_dual_encoder(folder).eval().embed_items(texts).numpy()  # (4, 384)
    got = system.encode_documents(texts)
    assert got.shape == (4, 384) and np.abs(got - expected).max() < 2e-2
    assert (got @ expected.T).argmax(1).tolist() == [0, 1, 2, 3]
    again = state_model_system(folder, state_root=tmp_path / "states")
    files = sorted((tmp_path / "states").rglob("*"))
    sizes = [f.stat().st_size for f in files if f.is_file()]
    np.testing.assert_allclose(again.encode_documents(texts), got, atol=1e-6)
    assert [f.stat().st_size for f in sorted((tmp_path / "states").rglob("*")) if f.is_file()] == sizes
    with pytest.raises(ValueError, match="no frozen layers"):
        state_model_system(save_tiny_code_model(tmp_path / "nbow"))
    from mmssl.eval.queries import code_model_system

    # the run folder's name stands for an output folder called "model"; a tower without frozen layers is encoded in full
    via_states = code_model_system(folder, tmp_path / "states")
    assert via_states.name == f"model ({tmp_path.name})"
    np.testing.assert_allclose(via_states.encode_documents(texts), got, atol=1e-6)
    assert code_model_system(tmp_path / "nbow", tmp_path / "states").name == "model (nbow)"
