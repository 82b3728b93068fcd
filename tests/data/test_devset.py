"""The developer-style code search dev set (mmssl/data/devset/code_queries.jsonl): every target
resolves to exactly one function of its corpus, no query gives the answer away (the function's name,
five words of its docstring), no reserved package, and parts and splits are there in fair shares."""

import re
from collections import Counter
from pathlib import Path

import pytest

from mmssl.data.code import extract_source, group_of, stdlib_dir
from mmssl.data.reserved import is_reserved_code_package
from mmssl.data.splits import split_of
from mmssl.eval.queries import (
    DEFAULT_QUERY_FILE,
    load_queries,
    out_of_corpus_records,
    package_folder,
    resolve_targets,
)

_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def words(text: str) -> list[str]:
    return _WORD.findall(_CAMEL.sub(" ", text).lower())


def contains_run(haystack: list[str], needle: list[str]) -> bool:
    return any(haystack[i:i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))


@pytest.fixture(scope="module")
def queries():
    return load_queries(DEFAULT_QUERY_FILE)


@pytest.fixture(scope="module")
def targets(queries):
    """(query, target record) pairs: out-of-corpus from the installed packages, in-corpus from the stdlib file."""
    out = [q for q in queries if q["part"] == "out-of-corpus"]
    records = out_of_corpus_records([q["repo"] for q in out])
    pairs = [(q, records[i]) for q, i in zip(out, resolve_targets(out, records))]
    for q in (q for q in queries if q["part"] == "in-corpus"):
        text = (stdlib_dir() / q["path"]).read_text(encoding="utf-8")
        file_records = extract_source(text, q["path"], "stdlib")
        pairs.append((q, file_records[int(resolve_targets([q], file_records)[0])]))
    return pairs


def test_counts_parts_and_splits(queries):
    counts = Counter((q["part"], q["split"]) for q in queries)
    assert len(queries) >= 150
    assert all(counts[(p, s)] >= 25 for p in ("in-corpus", "out-of-corpus") for s in ("dev", "test")), counts
    in_share = sum(v for (p, _), v in counts.items() if p == "in-corpus") / len(queries)
    assert 0.35 <= in_share <= 0.65, in_share  # roughly half and half
    assert len({q["text"] for q in queries}) == len(queries)  # no query twice


def test_queries_are_short_plain_sentences(queries):
    lengths = [len(q["text"].split()) for q in queries]
    assert min(lengths) >= 4 and max(lengths) <= 12


def test_split_is_by_package_or_module_group(queries):
    """Nothing of a test package is seen while choosing on dev: a group is in one split only."""
    def group(q):
        return q["repo"] if q["part"] == "out-of-corpus" else group_of("stdlib", q["path"])

    splits_of = {}
    for q in queries:
        splits_of.setdefault(group(q), set()).add(q["split"])
    assert all(len(s) == 1 for s in splits_of.values()), {g: s for g, s in splits_of.items() if len(s) > 1}


def test_no_reserved_package_and_in_corpus_targets_are_held_out(queries):
    assert not [q for q in queries if is_reserved_code_package(q["repo"]) or
                is_reserved_code_package(q["path"].split("/")[0].removesuffix(".py"))]
    held_out = {split_of(group_of("stdlib", q["path"])) for q in queries if q["part"] == "in-corpus"}
    assert held_out == {"test"}  # the code corpus's test split: never trained on
    from mmssl.data.code import WHEELS

    wheel_names = {spec.partition("==")[0].lower().replace("-", "_") for spec in WHEELS}
    outside = {q["repo"] for q in queries if q["part"] == "out-of-corpus"}
    assert outside.isdisjoint(wheel_names | {"stdlib"})
    assert all(package_folder(name).is_dir() for name in outside)


def test_every_target_resolves_at_its_line(targets, queries):
    assert len(targets) == len(queries)
    assert all(record["line"] == q["line"] for q, record in targets)


def test_no_query_holds_the_function_name_or_copies_the_docstring(targets):
    leaks = []
    for q, record in targets:
        query = words(q["text"])
        name = words(record["func_name"].rsplit(".", 1)[-1].replace("_", " "))
        docstring = words(record["docstring"])
        five_grams = {tuple(docstring[i:i + 5]) for i in range(len(docstring) - 4)}
        if contains_run(query, name) or any(tuple(query[i:i + 5]) in five_grams for i in range(len(query) - 4)):
            leaks.append((q["text"], record["func_name"], record["docstring"]))
    assert not leaks, leaks


def test_the_checks_can_fail():
    """The leak rules catch what they are meant to catch."""
    assert contains_run(words("strip silence from a track"), words("strip silence"))
    assert not contains_run(words("convert a color into xyz"), words("to"))
    assert words("parseQS") == ["parse", "qs"]


def test_query_file_errors_name_the_line(tmp_path):
    from mmssl.eval.queries import QueryFileError

    bad = tmp_path / "q.jsonl"
    bad.write_text('{"text": "x y z w", "part": "in-corpus", "split": "dev", "repo": "stdlib", "path": "a.py"}\n')
    with pytest.raises(QueryFileError, match=r"q.jsonl:1: missing func_name"):
        load_queries(bad)
    with pytest.raises(QueryFileError, match="no query file"):
        load_queries(Path(tmp_path / "none.jsonl"))


@pytest.mark.data
def test_in_corpus_targets_resolve_in_the_built_test_split(queries):
    """Against the real corpus (make data): each in-corpus target survives deduplication, once."""
    from mmssl.eval.queries import in_corpus_records

    in_corpus = [q for q in queries if q["part"] == "in-corpus"]
    records = in_corpus_records()
    targets = resolve_targets(in_corpus, records)
    assert len(set(targets.tolist())) == len(in_corpus)
    assert all(records[i]["split"] == "test" and records[i]["line"] == q["line"] for q, i in zip(in_corpus, targets))
