"""Query views (mmssl.data.pairs.code_query_views) on real standard-library functions, as the corpus
extractor records them."""

import concurrent.futures
from pathlib import Path

import pytest

from mmssl.data.code import extract_folder
from mmssl.data.pairs import (QUERY_VIEWS, CodePairs, PairCollator, code_query_views, code_training_pairs,
                              name_phrase, param_docs)
from mmssl.data.report import CorpusReport
from mmssl.eval.bm25 import mine_bm25_negatives


@pytest.fixture(scope="module")
def futures_records():
    folder = Path(concurrent.futures.__file__).parent
    return {r["func_name"]: r for r in extract_folder(folder, CorpusReport("code"), repo="stdlib")}


def test_views_of_a_documented_function_with_an_args_section(futures_records):
    views = code_query_views(futures_records["as_completed"])
    assert set(views) == set(QUERY_VIEWS)
    assert views["docstring"] == views["sentence"] == ("An iterator over the given futures that yields each as "
                                                       "it completes.")
    assert views["name"] == "as completed"
    # the Args: section, wrapped descriptions joined; the corpus record's docstring holds none of it
    assert views["params"].startswith("fs: The sequence of Futures (possibly created by different Executors) to "
                                      "iterate over.; timeout: The maximum number of seconds to wait.")
    assert "fs:" not in futures_records["as_completed"]["docstring"]


def test_method_names_put_the_class_words_after_the_method_words(futures_records):
    views = code_query_views(futures_records["Future.add_done_callback"])
    assert views["name"] == "add done callback future"
    assert views["params"].startswith("fn: A callable that will be called with this future as its only argument")


def test_a_function_without_parameter_docs_has_no_params_view(futures_records):
    views = code_query_views(futures_records["_yield_finished_futures"])
    assert set(views) == {"docstring", "sentence", "name"}
    assert views["name"] == "yield finished futures"  # the leading underscore is not a word


def test_sentence_view_is_the_first_sentence_of_the_paragraph():
    record = {"func_name": "f", "docstring": "Return the total. Empty input gives 0 (not None)."}
    assert code_query_views(record)["sentence"] == "Return the total."
    assert code_query_views(record)["docstring"] == record["docstring"]


def test_name_phrase_splits_snake_camel_and_acronyms():
    assert name_phrase("parse_http_date") == "parse http date"
    assert name_phrase("HTTPServer.getURL") == "get url http server"
    assert name_phrase("utf8Decode2") == "utf 8 decode 2"


def test_param_docs_reads_sphinx_fields_and_stops_at_the_next_section():
    doc = "Copy a file.\n\n:param src: where from\n:param str dst: where to\n    (a folder is fine)\n:returns: dst"
    assert param_docs(doc) == ["src: where from", "dst: where to (a folder is fine)"]
    google = "Wait.\n\nArgs:\n    fs: futures\n    timeout (float): seconds\n\nReturns:\n    a pair"
    assert param_docs(google) == ["fs: futures", "timeout: seconds"]


def test_training_pairs_one_per_view_a_function_has(futures_records):
    from mmssl.data.code_text import index_text
    from mmssl.data.pairs import code_training_pairs

    records = [futures_records["as_completed"], futures_records["_yield_finished_futures"]]
    queries, items = code_training_pairs(records, ["name", "params"], item_text="full")
    assert queries[:1] == ["as completed"] and queries[1].startswith("fs: ")
    assert queries[2:] == ["yield finished futures"]  # no parameter docs: one pair only
    assert items == [index_text(records[0], "full")] * 2 + [index_text(records[1], "full")]
    with pytest.raises(ValueError, match="unknown query view"):
        code_training_pairs(records, ["title"])


def test_nodoc_training_text_is_the_index_text_without_the_docstring(futures_records):
    from mmssl.data.code_text import index_text
    from mmssl.data.pairs import code_training_pairs, training_item_text

    record = futures_records["Future.add_done_callback"]
    full, nodoc = index_text(record, "full"), training_item_text(record, "nodoc")
    assert nodoc.splitlines()[0] == full.splitlines()[0] == "# _base: Future.add_done_callback"
    assert record["docstring"].split()[0] in full and record["docstring"] not in nodoc
    assert nodoc.splitlines()[1:] == record["code"].splitlines()  # signature and body, as the corpus cuts them
    assert "def add_done_callback(self, fn):" in nodoc and len(nodoc) < len(full)
    queries, items = code_training_pairs([record], ["docstring"], item_text="nodoc")
    assert items == [nodoc] and queries[0] not in items[0]  # the query is not inside the item
    with pytest.raises(ValueError, match="nodoc"):
        training_item_text(record, "body")


def test_training_rows_group_by_module_and_view(futures_records):
    from mmssl.data.pairs import code_training_rows

    records = [futures_records["as_completed"], futures_records["_yield_finished_futures"]]
    queries, items, groups = code_training_rows(records, ["name", "params"], item_text="nodoc")
    assert len(queries) == len(items) == len(groups) == 3
    assert groups == ["stdlib/_base.py#name", "stdlib/_base.py#params", "stdlib/_base.py#name"]


def test_bm25_negatives_are_the_top_lexical_hit_that_is_not_the_own_item():
    items = ["def read_file(path): return open(path).read()",
             "def write_file(path, text): open(path, 'w').write(text)",
             "def wait_process(proc, timeout): return proc.wait(timeout)"]
    queries = ["read a file from a path", "write text to a file", "wait for a process", "zebra"]
    own = items + [items[0]]
    negatives = mine_bm25_negatives(queries, own, top_k=1)
    # "read a file from a path": write_file shares file and path; "write text to a file": read_file shares file
    assert negatives[:2] == [items[1], items[0]]
    assert negatives[2] in items[:2] and negatives[3] in items[1:]  # no shared word: any other item, never its own
    deep = [mine_bm25_negatives(queries, own, top_k=2, seed=seed) for seed in range(6)]
    assert deep[0] == mine_bm25_negatives(queries, own, top_k=2, seed=0)  # seeded
    assert {d[0] for d in deep} == {items[1]}  # wait_process is in the top 2 but scores 0: not a hard negative
    assert {d[3] for d in deep} == {items[1], items[2]}
    with pytest.raises(ValueError, match="at least 2 distinct items"):
        mine_bm25_negatives(queries[:2], [items[0], items[0]])


def test_bm25_negatives_on_real_functions_feed_the_pairs_and_the_collator(futures_records):
    queries, items = code_training_pairs(list(futures_records.values()), ["docstring"], "nodoc")
    negatives = mine_bm25_negatives(queries, items, top_k=3)
    assert len(negatives) == len(items) and all(n != i for n, i in zip(negatives, items))
    wait = queries.index(code_query_views(futures_records["wait"])["docstring"])
    assert "def " in negatives[wait] and "futures" in negatives[wait].lower()
    pairs = CodePairs(queries, items, negatives=negatives)
    assert pairs[wait] == {"item": items[wait], "negative_item": negatives[wait], "query": queries[wait]}
    batch = PairCollator(lambda texts: [len(t) for t in texts], lambda texts: [t[:3] for t in texts])(
        [pairs[0], pairs[1]])
    assert batch["negative_item"] == [negatives[0][:3], negatives[1][:3]]  # the item side's tokenizer
    with pytest.raises(ValueError, match="2 negatives"):
        CodePairs(queries, items, negatives=negatives[:2])
