"""``mmssl eval --index NAME --queries FILE``: the user's own queries ranked over a whole real index,
checked against ranks computed here independently (by looping over items with fresh embeddings)."""

import inspect
import json
import os
import shutil

import numpy as np
import pytest
from tiny_models import save_tiny_code_model, save_tiny_image_model

from mmssl.cli import main
from mmssl.eval.user_queries import ExpectedItemError, read_user_queries
from mmssl.index import build_index, code_folder_items, image_folder_items, load_index
from mmssl.index.user_eval import evaluate_index_queries
from mmssl.model import load_model

MODULES = ("textwrap", "shlex", "fnmatch", "posixpath", "base64")


@pytest.fixture(scope="module")
def code_setup(tmp_path_factory):
    """A project of five real stdlib modules indexed with a tiny code model, and 20 queries: 18 first
    docstring paragraphs, a whole file and a name defined twice in one file."""
    root = tmp_path_factory.mktemp("user-eval")
    project = root / "project"
    project.mkdir()
    for name in MODULES:
        shutil.copy(inspect.getsourcefile(__import__(name)), project / f"{name}.py")
    model = load_model(save_tiny_code_model(root / "code-tiny"), device="cpu")
    items, source = code_folder_items(project)
    index = build_index(root / "indexes" / "proj", model, items, source=source, progress=False)
    queries = []  # (query, [expected refs])
    for item in code_folder_items(project)[0]:
        first = " ".join(item.metadata["docstring"].split("\n\n")[0].split())
        if len(first.split()) >= 3 and all(q != first for q, _ in queries) and len(queries) < 18:
            queries.append((first, [f"{item.path}:{item.metadata['func_name']}"]))
    queries.append(("wrap text into lines of a given width", ["textwrap.py"]))  # a whole file: every function
    queries.append(("normalize a path, collapsing redundant separators", ["posixpath.py:normpath"]))  # defined twice
    assert len(queries) == 20
    path = root / "queries.tsv"
    path.write_text("".join(f"{q}\t{';'.join(e)}\n" for q, e in queries))
    return {"root": root, "project": project, "model": model, "index": index, "queries": queries, "file": path}


def hand_ranks(query_vectors, item_vectors, relevant_sets):
    """Pessimistic 1-based rank of each query's best relevant item, by plain loops."""
    ranks = []
    for q, relevant in zip(query_vectors, relevant_sets):
        scores = [float(np.dot(q, v)) for v in item_vectors]
        best = max(scores[j] for j in relevant)
        ranks.append(1 + sum(1 for j, s in enumerate(scores) if j not in relevant and s >= best))
    return ranks


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_twenty_code_queries_give_the_hand_computed_mrr(code_setup):
    model, queries = code_setup["model"], code_setup["queries"]
    items = list(code_folder_items(code_setup["project"])[0])
    relevant_sets = []
    for _, expected in queries:
        found = set()
        for ref in expected:
            path, _, func = ref.partition(":")
            found |= {j for j, item in enumerate(items) if item.path == path and
                      (not func or func in (item.metadata["func_name"], item.metadata["func_name"].split(".")[-1]))}
        relevant_sets.append(found)
    assert all(relevant_sets) and len(relevant_sets[18]) > 10 and len(relevant_sets[19]) == 2
    ranks = hand_ranks(unit(model.encode_text([q for q, _ in queries])),
                       unit(model.encode_code([item.content for item in items])), relevant_sets)
    expected_mrr = sum(1 / r for r in ranks) / len(ranks)

    parsed, _ = read_user_queries(code_setup["file"])
    results = evaluate_index_queries(code_setup["index"], model, parsed, cache_root=code_setup["root"] / "cache")
    rows = {row["system"]: row for row in results["rows"]}
    dense = rows["model (code-tiny)"]
    assert results["num_items"] == len(items) and results["num_queries"] == 20
    assert dense["ranks"] == ranks
    assert dense["mrr"] == pytest.approx(expected_mrr, abs=1e-12)
    assert dense["recall@10"] == pytest.approx(sum(r <= 10 for r in ranks) / 20)
    # docstring queries against texts that hold the docstring: BM25 and MiniLM find nearly all,
    # the random tiny model far fewer, random guessing almost none
    assert rows["BM25"]["mrr"] > 0.8 and rows["MiniLM zero-shot"]["mrr"] > 0.7
    assert rows["random (expected)"]["mrr"] < 0.1 < rows["BM25"]["mrr"] - dense["mrr"]
    assert set(rows) == {"model (code-tiny)", "model (code-tiny) + BM25", "BM25", "MiniLM zero-shot",
                         "random (expected)"}


def test_an_expected_item_not_in_the_index_is_named_with_the_fix(code_setup, tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text(json.dumps({"query": "dedent text", "expected": ["textwrap.py:dedent", "nowhere.py:f"]}) + "\n"
                   + json.dumps({"query": "x", "expected": ["shlex.py:no_such_function"]}) + "\n")
    queries, _ = read_user_queries(bad)
    with pytest.raises(ExpectedItemError) as error:
        evaluate_index_queries(code_setup["index"], code_setup["model"], queries, baselines=False)
    message = str(error.value)
    assert "2 expected item(s) are not in proj" in message and "line 1: 'nowhere.py:f'" in message
    assert "line 2: 'shlex.py:no_such_function'" in message and "textwrap.py:dedent" not in message.split("\n")[1]
    assert "path or path:function" in message and "refresh or rebuild" in message


def test_cli_eval_index_prints_the_table_and_json(code_setup, capsys, monkeypatch):
    monkeypatch.setenv("MMSSL_DATA_DIR", str(code_setup["root"]))
    index = str(code_setup["root"] / "indexes" / "proj")
    assert main(["eval", "--index", index, "--queries", str(code_setup["file"]), "--no-baselines",
                 "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    assert "proj: 20 queries ranked over all" in table and "model (code-tiny)" in table and "BM25" not in table
    assert main(["eval", "--index", index, "--queries", str(code_setup["file"]), "--no-baselines", "--json",
                 "--device", "cpu"]) == 0
    results = json.loads(capsys.readouterr().out)
    direct = evaluate_index_queries(code_setup["index"], code_setup["model"],
                                    read_user_queries(code_setup["file"])[0], baselines=False)
    assert results["rows"][0]["mrr"] == pytest.approx(direct["rows"][0]["mrr"], abs=1e-9)
    bad = code_setup["root"] / "bad.tsv"
    bad.write_text("a query without a tab\n")
    assert main(["eval", "--index", index, "--queries", str(bad)]) == 1
    assert f"{bad}:1: no tab" in capsys.readouterr().err


def test_image_folder_queries_relative_and_absolute(emoji_folder, tmp_path):
    model = load_model(save_tiny_image_model(tmp_path / "clip-tiny"), device="cpu")
    items, source = image_folder_items(emoji_folder)
    items = list(items)
    build_index(tmp_path / "indexes" / "photos", model, items, source=source, progress=False)
    index = load_index(tmp_path / "indexes" / "photos", model)
    lines = []
    for j, item in enumerate(items):
        ref = item.path if j % 2 else os.path.relpath(item.path, emoji_folder)  # absolute and relative
        lines.append(f"{item.metadata['caption']}\t{ref}")
    (tmp_path / "q.tsv").write_text("\n".join(lines) + "\n")
    queries, _ = read_user_queries(tmp_path / "q.tsv")
    results = evaluate_index_queries(index, model, queries)
    rows = {row["system"]: row for row in results["rows"]}
    ranks = hand_ranks(unit(model.encode_text([i.metadata["caption"] for i in items])),
                       unit(model.encode_image([i.path for i in items])), [{j} for j in range(len(items))])
    assert rows["model (clip-tiny)"]["ranks"] == ranks
    assert rows["BM25"]["recall@1"] > 0.8  # the query is the caption
    n = len(items)
    assert n >= 20 and rows["random (expected)"]["mrr"] == pytest.approx(sum(1 / r for r in range(1, n + 1)) / n)
    assert "no zero-shot image-text baseline offline" in results["notes"][0]
    assert not os.path.isabs(lines[0].split("\t")[1]) and os.path.isabs(lines[1].split("\t")[1])
