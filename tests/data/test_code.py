"""The code corpus on the standard library and small synthetic projects (no wheel downloads)."""

from __future__ import annotations

import inspect
import json
import urllib.parse

import pytest

from mmssl.data import code
from mmssl.data.corpus import load_corpus
from mmssl.data.report import CorpusReport
from mmssl.data.splits import SPLITS, split_of

CSN_FIELDS = {"repo", "path", "func_name", "original_string", "language", "code", "code_tokens",
              "docstring", "docstring_tokens", "url", "partition"}


def _stdlib_file(rel: str) -> str:
    return code.decode_source((code.stdlib_dir() / rel).read_bytes())


def _by_name(records: list[dict]) -> dict[str, dict]:
    return {r["func_name"]: r for r in records}


def test_parse_qs_record_fields_and_docstring_cut():
    text = _stdlib_file("urllib/parse.py")
    rec = _by_name(code.extract_source(text, "urllib/parse.py", code.STDLIB))["parse_qs"]
    source, line = inspect.getsourcelines(urllib.parse.parse_qs)

    assert CSN_FIELDS | {"split", "signature", "line", "group"} <= set(rec)
    assert rec["repo"] == "stdlib" and rec["path"] == "urllib/parse.py" and rec["language"] == "python"
    assert rec["line"] == line and rec["url"] == f"urllib/parse.py:{line}"
    assert rec["group"] == "stdlib/urllib"
    assert rec["split"] == rec["partition"] == split_of("stdlib/urllib")
    assert rec["signature"].startswith("def parse_qs(qs, keep_blank_values=False, strict_parsing=False")
    assert rec["original_string"] == "".join(source).rstrip("\n")
    first_paragraph = " ".join(inspect.getdoc(urllib.parse.parse_qs).split("\n\n")[0].split())
    assert rec["docstring"] == first_paragraph
    assert rec["docstring_tokens"][:4] == ["Parse", "a", "query", "given"]

    # The docstring's lines are gone; every other line is byte-identical, in order.
    doc_start = next(i for i, s in enumerate(source) if '"""' in s)
    doc_end = next(i for i in range(doc_start + 1, len(source)) if '"""' in source[i])
    expected = "".join(source[:doc_start] + source[doc_end + 1:]).rstrip("\n")
    assert rec["code"] == expected
    assert '"""' not in rec["code"] and "Parse a query" not in rec["code"]
    assert rec["code"] in text.replace("".join(source[doc_start:doc_end + 1]), "")
    assert rec["code_tokens"][:4] == ["def", "parse_qs", "(", "qs"]
    assert "parsed_result" in rec["code_tokens"]


def test_method_is_qualified_and_tokens_skip_comments():
    rec = _by_name(code.extract_source(_stdlib_file("json/encoder.py"), "json/encoder.py", "stdlib"))
    enc = rec["JSONEncoder.encode"]
    assert enc["signature"] == "def encode(self, o)"
    assert enc["code_tokens"][:8] == ["def", "encode", "(", "self", ",", "o", ")", ":"]
    assert "# This is for extremely simple cases and benchmarks." in enc["code"]  # code keeps comments
    assert not any(t.startswith("#") for t in enc["code_tokens"])  # tokens don't
    assert "JSONEncoder.__init__" not in rec  # dunder


SYNTHETIC = '''\
def good(a, b):
    """Add two numbers together and return the sum.

    More detail that is not part of the summary.
    """
    c = a + b
    d = c * 1
    return d


def no_doc(a):
    x = a
    y = x
    return y


def short_doc(a):
    """Adds them."""
    x = a
    y = x
    return y


def short_func(a):
    """Return the argument unchanged, always."""
    return a


def test_something():
    """Check that things work as intended here."""
    x = 1
    y = 2
    assert x < y


class Thing:
    def __repr__(self):
        """Represent the thing as a string for debugging."""
        x = 1
        y = 2
        return "Thing"

    def method(self, x):
        """Scale the value by the thing's own factor."""
        y = x * 2
        z = y + 1
        return z

    def outer(self):
        """Return a closure that counts its calls."""
        def inner():
            """Nested functions stay part of their parent."""
            return 1
        return inner


class TestThing:
    def check(self):
        """A method of a test class is a test function."""
        x = 1
        y = 2
        return x + y


class Base:
    def compute(self, value,
                other):
        """Subclasses compute the result from the value."""
        raise NotImplementedError("in a subclass")
'''


def test_each_filter_on_a_synthetic_source(tmp_path):
    records = code.extract_source(SYNTHETIC, "proj/mod.py", "proj")
    assert [r["func_name"] for r in records] == ["good", "Thing.method", "Thing.outer"]
    good = records[0]
    assert good["docstring"] == "Add two numbers together and return the sum."
    assert good["code"] == "def good(a, b):\n    c = a + b\n    d = c * 1\n    return d"
    assert good["signature"] == "def good(a, b)"
    assert "def inner():" in records[2]["code"]

    (tmp_path / "mod.py").write_text(SYNTHETIC)
    report = CorpusReport("code")
    assert len(list(code.extract_folder(tmp_path, report, repo="proj"))) == 3
    assert report.skipped == {"no docstring": 1, "short docstring (< 3 words)": 1,
                              "short function (< 3 lines)": 1, "test function": 2, "dunder method": 1,
                              "stub function (docstring only)": 1}
    assert report.examples["test function"] == ["proj:mod.py:29", "proj:mod.py:58"]


def test_require_docstring_false_keeps_undocumented_functions(tmp_path):
    """The search product's extraction: the docstring rules go, every other filter stays."""
    records = {r["func_name"]: r for r in code.extract_source(SYNTHETIC, "proj/mod.py", "proj", require_docstring=False)}
    assert set(records) == {"good", "no_doc", "short_doc", "Thing.method", "Thing.outer"}
    assert records["no_doc"]["docstring"] == "" and records["no_doc"]["code"] == records["no_doc"]["original_string"]
    assert records["short_doc"]["docstring"] == "Adds them."  # short, kept, and still cut from the code
    assert "Adds them" not in records["short_doc"]["code"]
    (tmp_path / "mod.py").write_text(SYNTHETIC)
    report = CorpusReport("code")
    assert len(list(code.extract_folder(tmp_path, report, repo="proj", require_docstring=False))) == 5
    assert "no docstring" not in report.skipped and report.skipped["stub function (docstring only)"] == 1


def test_duplicate_code_is_dropped_even_when_reformatted(tmp_path):
    (tmp_path / "a.py").write_text('def f(x):\n    """Double the value given as x."""\n    y = x * 2\n'
                                   '    return y\n')
    # Same tokens: another docstring, a comment, other spacing -> still a duplicate.
    (tmp_path / "b.py").write_text('def f(x):\n    """Twice the value, as another summary."""\n'
                                   '    # a comment\n    y = x*2\n\n    return y\n')
    (tmp_path / "c.py").write_text('def f(x):\n    """Triple the value given as x."""\n    y = x * 3\n'
                                   '    return y\n')
    report = CorpusReport("code")
    records = list(code.extract_folder(tmp_path, report, repo="proj"))
    assert [r["path"] for r in records] == ["a.py", "c.py"]
    assert report.skipped == {"duplicate code": 1}
    assert report.examples["duplicate code"] == ["proj:b.py:1"]


FUNC = 'def f(x):\n    """Return the value plus one, as {0}."""\n    y = x + 1\n    return y, "{0}"\n'


def test_bad_files_are_skipped_by_reason(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "ok.py").write_text(FUNC.format("ok"))
    (pkg / "broken.py").write_text("def f(:\n    pass\n")
    (pkg / "latin_no_cookie.py").write_bytes(b"# caf\xe9\n" + FUNC.format("nocookie").encode())
    (pkg / "latin_cookie.py").write_bytes(b"# -*- coding: latin-1 -*-\n"
                                          + FUNC.format("caf\xe9").encode("latin-1"))
    (pkg / "bad_cookie.py").write_bytes(b"# coding: no-such-codec\n" + FUNC.format("bad").encode())
    (pkg / "huge.py").write_text(FUNC.format("huge") + "#" * (code.MAX_FILE_BYTES + 10) + "\n")
    (pkg / "tests").mkdir()
    (pkg / "tests" / "helpers.py").write_text(FUNC.format("in tests"))
    (pkg / "test_things.py").write_text(FUNC.format("test module"))
    (pkg / ".venv").mkdir()
    (pkg / ".venv" / "lib.py").write_text(FUNC.format("environment"))

    report = CorpusReport("code")
    records = list(code.extract_folder(tmp_path, report, repo="proj"))
    assert sorted(r["docstring"] for r in records) == ["Return the value plus one, as café.",
                                                      "Return the value plus one, as ok."]
    assert report.skipped == {"syntax error": 1, "not utf-8": 1, "bad encoding cookie": 1,
                              "huge file (> 1 MB)": 1, "test file": 2}
    assert report.examples["not utf-8"] == ["proj:pkg/latin_no_cookie.py"]
    assert report.examples["syntax error"] == ["proj:pkg/broken.py"]

    assert code.extract_source("def f(:\n", "x.py", "proj") == []
    assert code.extract_source("\x00", "x.py", "proj") == []
    with pytest.raises(NotADirectoryError, match="not a folder"):
        list(code.extract_folder(tmp_path / "missing", report))


def test_docstring_sharing_a_line_and_non_ascii_offsets():
    src = ('class K:\n    def f(self):\n        "Ünïcödé summary with words."; x = "é€"\n'
           '        y = x  # ✓\n        return y\n')
    (rec,) = code.extract_source(src, "k.py", "proj")
    assert rec["code"] == 'def f(self):\n        x = "é€"\n        y = x  # ✓\n        return y'
    assert rec["original_string"] == src[src.index("def"):].rstrip("\n")
    assert rec["code_tokens"] == ["def", "f", "(", "self", ")", ":", "x", "=", '"é€"', "y", "=", "x",
                                  "return", "y"]


def test_groups_follow_packages():
    assert code.group_of("stdlib", "email/mime/text.py") == "stdlib/email"
    assert code.group_of("stdlib", "json/__init__.py") == "stdlib/json"
    assert code.group_of("stdlib", "os.py") == "stdlib/os"
    assert code.group_of("pandas", "pandas/core/frame.py") == "pandas/core"
    assert code.group_of("requests", "requests/api.py") == "requests/api"
    assert code.group_of("six", "six.py") == "six/six"


def test_split_by_group_in_a_project(tmp_path):
    for sub in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta"):
        for i in range(3):
            path = tmp_path / "proj" / sub / f"m{i}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f'def f_{sub}_{i}(x):\n    """Return x plus {i} in module {sub}."""\n'
                            f'    y = x + {i}\n    return y\n')
    records = list(code.extract_folder(tmp_path, CorpusReport("code"), repo="proj"))
    assert len(records) == 18
    split_by_group: dict[str, set] = {}
    for r in records:
        split_by_group.setdefault(r["group"], set()).add(r["split"])
        assert r["split"] == split_of(r["group"])
    assert set(split_by_group) == {f"proj/{s}" for s in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")}
    assert all(len(s) == 1 for s in split_by_group.values())


@pytest.fixture(scope="module")
def stdlib_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("code")
    return out, code.build(out, include_wheels=False)


def test_stdlib_build_is_leak_free(stdlib_corpus):
    out, report = stdlib_corpus
    assert report.total >= 3000  # ~4,400 on Python 3.11
    assert all(report.pairs[s] > 100 for s in SPLITS)
    assert report.extra["overlap"]["code_hashes_in_two_splits"] == 0
    assert report.extra["overlap"]["groups_in_two_splits"] == 0
    assert all(report.extra["groups_per_split"][s] > 5 for s in SPLITS)
    assert report.extra["per_repo"]["stdlib"]["total"] == report.total
    assert report.skipped["test file"] > 100  # the stdlib's test suites are not read
    paths = {json.loads(line)["path"] for s in SPLITS for line in open(out / f"{s}.jsonl")}
    assert not any(p.startswith(("test/", "idlelib/idle_test/")) for p in paths)
    assert json.loads((out / "report.json").read_text())["total"] == report.total


def test_build_is_idempotent(stdlib_corpus):
    out, report = stdlib_corpus
    mtime = (out / "train.jsonl").stat().st_mtime_ns
    again = code.build(out, include_wheels=False)
    assert again.to_dict() == report.to_dict()
    assert (out / "train.jsonl").stat().st_mtime_ns == mtime


def test_load_corpus_gives_codesearchnet_columns(stdlib_corpus):
    out, report = stdlib_corpus
    ds = load_corpus("code", "test", root=out)
    assert len(ds) == report.pairs["test"]
    assert CSN_FIELDS <= set(ds.column_names)
    row = ds[0]
    assert row["language"] == "python" and row["partition"] == "test"
    assert isinstance(row["code_tokens"], list) and row["url"].endswith(f":{row['line']}")


def test_limit_caps_a_quick_build(tmp_path):
    report = code.build(tmp_path, include_wheels=False, limit=50, workers=1)
    assert report.total == 50
    assert report.extra["params"]["limit"] == 50
