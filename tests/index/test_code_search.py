"""Code search over a user's project: what the index embeds, undocumented functions, hybrid ranking,
``search --queries`` and refresh of changed functions only."""

import json

import numpy as np
import pytest
from tiny_models import save_tiny_code_model

from mmssl.cli import main
from mmssl.data.code_text import index_text
from mmssl.index import build_index, code_folder_items, load_index
from mmssl.index.hybrid import hybrid_search, read_query_file, search_texts
from mmssl.index.sources import code_record_item
from tests.index.stub_model import StubModel

STRINGS = '''\
class QueryParser:
    def parse_query(self, text):
        """Parse a query string into a dictionary of values."""
        pairs = [p.split("=") for p in text.split("&")]
        return dict(pairs)


def reverse_words(text):
    """Reverse the order of the words in a sentence."""
    words = text.split()
    return " ".join(reversed(words))
'''
CHECKSUMS = '''\
def crc_table(polynomial):
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ polynomial if value & 1 else value >> 1
        table.append(value)
    return table


def add_numbers(a, b):
    total = a + b
    return total
'''


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "strings.py").write_text(STRINGS)
    (folder / "checksums.py").write_text(CHECKSUMS)
    return folder


@pytest.fixture(scope="module")
def code_model(tmp_path_factory):
    from mmssl.model import load_model

    return load_model(save_tiny_code_model(tmp_path_factory.mktemp("models") / "code-tiny"), device="cpu")


def items_by_name(folder, **options):
    items, _ = code_folder_items(folder, **options)
    return {item.metadata["func_name"]: item for item in items}


def test_index_text_holds_name_class_signature_docstring_and_body(project):
    items = items_by_name(project)
    text = items["QueryParser.parse_query"].content
    assert text.startswith("# strings: QueryParser.parse_query\n")  # module, class and name
    assert "def parse_query(self, text):" in text and "Parse a query string into a dictionary" in text
    assert 'text.split("&")' in text  # the body
    cut = items_by_name(project, text="code")["QueryParser.parse_query"].content
    assert "Parse a query string" not in cut and 'text.split("&")' in cut  # CSN's docstring-cut form
    record = {"path": "a/b.py", "func_name": "f", "code": "def f():\n    return 1", "original_string": "x"}
    assert index_text(record, "code") == record["code"] and index_text(record, "full") == "# a.b: f\nx"
    with pytest.raises(ValueError, match="unknown index text"):
        index_text(record, "docstring")


def test_project_index_includes_undocumented_functions(project):
    assert set(items_by_name(project)) == {"QueryParser.parse_query", "reverse_words", "crc_table", "add_numbers"}
    assert set(items_by_name(project, require_docstring=True)) == {"QueryParser.parse_query", "reverse_words"}


def test_undocumented_function_is_found_by_its_code_and_name(tmp_path, project, code_model):
    index = build_index(tmp_path / "idx", code_model, code_folder_items(project)[0], progress=False)
    query = ["crc table for a polynomial, byte by byte"]
    ranked = {mode: [h.metadata["func_name"] for h in search_texts(index, code_model, query, k=4, mode=mode)[0]]
              for mode in ("lexical", "dense", "hybrid")}
    assert ranked["lexical"][0] == "crc_table"
    # the tiny model's dense side is untrained noise; BM25 ranking crc_table first can only lift it
    assert ranked["hybrid"].index("crc_table") <= ranked["dense"].index("crc_table")
    hit = search_texts(index, code_model, query, k=1, mode="lexical")[0][0]
    assert hit.metadata["docstring"] == "" and hit.metadata["line"] == 1 and hit.metadata["path"] == "checksums.py"


def test_lexical_weight_zero_is_dense_and_one_is_lexical(tmp_path, project, code_model):
    index = build_index(tmp_path / "idx", code_model, code_folder_items(project)[0], progress=False)
    queries = ["reverse the words of a sentence", "sum two numbers", "parse a query string"]
    vectors = code_model.encode_text(queries)
    dense = index.search(vectors, k=4)
    zero = hybrid_search(index, queries, vectors, k=4, lexical_weight=0.0)
    one = hybrid_search(index, queries, vectors, k=4, lexical_weight=1.0)
    lexical = hybrid_search(index, queries, None, k=4, mode="lexical")
    assert [[h.id for h in q] for q in zero] == [[h.id for h in q] for q in dense]
    for fused, lexical_hits in zip(one, lexical):  # the same BM25 order (ties may fall either way)
        bm25 = {h.id: h.score for h in lexical_hits}
        assert [bm25[h.id] for h in fused] == [h.score for h in lexical_hits]
    assert [h.metadata["func_name"] for h in lexical[0]][:1] == ["reverse_words"]


def test_search_queries_file_equals_one_by_one(tmp_path, project, capsys, monkeypatch):
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    model = save_tiny_code_model(tmp_path / "code-tiny")
    assert main(["index", "build", "proj", "--model", str(model), "--project", str(project)]) == 0
    queries = ["reverse the words of a sentence", "crc of bytes", "parse a query string"]
    file = tmp_path / "queries.jsonl"
    file.write_text("\n".join(json.dumps({"text": q}) for q in queries) + "\n")
    capsys.readouterr()
    for mode in ([], ["--dense-only"], ["--lexical-only"]):
        assert main(["search", "--index", "proj", "--queries", str(file), "-k", "3", "--json", *mode]) == 0
        batch = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [b["query"] for b in batch] == queries
        for query, answer in zip(queries, batch):
            assert main(["search", "--index", "proj", "--query", query, "-k", "3", "--json", *mode]) == 0
            single = json.loads(capsys.readouterr().out)
            assert [(h["path"], h["func_name"], h["line"]) for h in answer["hits"]] == \
                [(h["path"], h["func_name"], h["line"]) for h in single]
            # batched encoding pads to the longest query: float32 noise only
            assert [h["score"] for h in answer["hits"]] == pytest.approx([h["score"] for h in single], abs=1e-5)
    assert main(["search", "--index", "proj", "--query", "x", "--dense-only", "--lexical-only"]) == 1
    assert "exclude each other" in capsys.readouterr().err


def test_query_file_reads_lines_and_jsonl(tmp_path):
    plain = tmp_path / "q.txt"
    plain.write_text("first query\n\n  second query  \n")
    assert read_query_file(plain) == ["first query", "second query"]
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"query": "no text field"}\n')
    with pytest.raises(ValueError, match=r"q.jsonl:1: a JSON query needs a non-empty 'text'"):
        read_query_file(bad)


def test_refresh_reembeds_only_changed_functions(tmp_path, project):
    model = StubModel("code", 16)
    build_index(tmp_path / "idx", model, code_folder_items(project)[0], progress=False,
                source=code_folder_items(project)[1])
    model.encoded.clear()
    # strings.py: reverse_words changes; checksums.py: add_numbers goes, a new function comes, crc_table moves down
    (project / "strings.py").write_text(STRINGS.replace('" ".join(reversed(words))', '"-".join(reversed(words))'))
    (project / "checksums.py").write_text("\n\n" + CHECKSUMS.split("\n\n\ndef add_numbers")[0] +
                                          "\n\n\ndef mean(values):\n    total = sum(values)\n    return total / len(values)\n")
    report = load_index(tmp_path / "idx", model).refresh()
    assert report.reembedded == ["strings.py:reverse_words"]
    assert report.added == ["checksums.py:mean"] and report.removed == ["checksums.py:add_numbers"]
    assert report.unchanged == 2  # parse_query, and crc_table (moved, same code)
    assert sorted(text.split("\n", 1)[0] for text in model.encoded) == ["# checksums: mean", "# strings: reverse_words"]
    refreshed = load_index(tmp_path / "idx")
    rows = {row.metadata["func_name"]: row for row in refreshed.store.live_rows()}
    assert set(rows) == {"QueryParser.parse_query", "reverse_words", "crc_table", "mean"}
    assert rows["crc_table"].metadata["line"] == 3  # its new line, without re-embedding it
    again = load_index(tmp_path / "idx", model).refresh()
    assert (again.added, again.reembedded, again.removed, again.unchanged) == ([], [], [], 4)


def test_item_sha1_follows_what_is_embedded():
    record = {"path": "m.py", "func_name": "f", "code": "def f():\n    return 1", "original_string": "def f():\n    return 1"}
    same, changed = code_record_item(record), code_record_item({**record, "original_string": "def f():\n    return 2"})
    assert same.sha1 == code_record_item(dict(record)).sha1 and same.sha1 != changed.sha1
    assert np.isclose(len(same.sha1), 40)
