"""Code search features of the service: hybrid ranking by default with the dense and lexical scores of
each hit, the filters (path glob, function vs method, exclude tests), and the file behind a hit."""

from __future__ import annotations

import numpy as np
import pytest

from mmssl.app import UserError
from mmssl.index.code_filters import CodeFilter, CodeFilterError, is_method, is_test
from mmssl.index.hybrid import DEFAULT_LEXICAL_WEIGHT, hybrid_search, lexical_index

QUERY = "split a string into shell words"


def test_code_tab_ranks_hybrid_and_keeps_both_scores(service):
    loaded = service.get(None, "code")
    hybrid = service.search_code(QUERY, k=10).hits
    vectors = loaded.model.encode_text([QUERY])
    expected = hybrid_search(loaded.index, [QUERY], vectors, 10, lexical_weight=DEFAULT_LEXICAL_WEIGHT)[0]
    assert [h.id for h in hybrid] == [h.id for h in expected]
    dense = service.search_code(QUERY, k=10, mode="dense").hits
    assert [h.id for h in hybrid] != [h.id for h in dense]  # BM25 changes the ranking on this index
    assert all(h.dense == h.score for h in dense)
    # each hybrid hit's lexical score is its own BM25 score, its dense one its cosine
    lexical = lexical_index(loaded.index)
    bm25 = dict(zip(lexical.ids.tolist(), lexical.scores([QUERY])[0].tolist()))
    cosine = {h.id: h.score for h in loaded.index.search(vectors, k=len(loaded.index))[0]}
    for hit in hybrid:
        assert hit.lexical == pytest.approx(bm25[hit.id])
        assert hit.dense is None or hit.dense == pytest.approx(cosine[hit.id], abs=1e-5)
    assert max(h.lexical for h in hybrid) > 0 and "shlex" in {h.metadata["module"] for h in hybrid[:3]}
    with pytest.raises(UserError, match="ranking must be one of"):
        service.search_code(QUERY, mode="fancy")


def test_function_vs_method_and_path_glob_filters(service):
    loaded = service.get(None, "code")
    everything = loaded.index.search(loaded.model.encode_text([QUERY]), k=len(loaded.index))[0]
    methods = service.search_code(QUERY, k=20, kind="method", mode="dense").hits
    functions = service.search_code(QUERY, k=20, kind="function", mode="dense").hits
    assert len(methods) == len(functions) == 20
    assert [h.id for h in methods] == [h.id for h in everything if "." in h.metadata["func_name"]][:20]
    assert [h.id for h in functions] == [h.id for h in everything if "." not in h.metadata["func_name"]][:20]
    glob = service.search_code(QUERY, k=50, path_glob="f*.py", mode="dense").hits
    assert glob and {h.metadata["path"] for h in glob} == {"fnmatch.py", "fractions.py"}
    both = service.search_code(QUERY, k=50, path_glob="s*.py", kind="method", package="textkit").hits
    assert both and {h.metadata["path"] for h in both} == {"shlex.py"}  # statistics.py is numkit's
    assert all(is_method(h.metadata) for h in both)
    none = service.search_code(QUERY, k=5, path_glob="nothing/*.py")
    assert none.hits == [] and "Nothing matches those filters" in none.note
    with pytest.raises(UserError, match="kind must be one of"):
        service.search_code(QUERY, kind="class")


@pytest.mark.parametrize("metadata, test", [
    ({"path": "tests/test_io.py", "func_name": "helper"}, True),
    ({"path": "pkg/testing/util.py", "func_name": "make"}, True),
    ({"path": "pkg/io_test.py", "func_name": "Case.run"}, True),
    ({"path": "pkg/io.py", "func_name": "Suite.test_read"}, True),
    ({"path": "pkg/conftest.py", "func_name": "fixture"}, True),
    ({"path": "pkg/contest.py", "func_name": "attest"}, False),
    ({"path": "latest/io.py", "func_name": "read"}, False),
])
def test_what_counts_as_a_test(metadata, test):
    assert is_test(metadata) is test
    assert CodeFilter(exclude_tests=True).keeps(metadata) is not test


def test_code_filter_values_and_their_errors():
    assert CodeFilter().as_filter() is None and CodeFilter().is_empty
    assert CodeFilter(package=" numkit ", module="statistics").as_filter() == {"repo": "numkit",
                                                                              "module": "statistics"}
    keep = CodeFilter(package="numkit", path_glob="stat*.py", kind="function").as_filter()
    assert keep({"repo": "numkit", "path": "statistics.py", "func_name": "mean"})
    assert not keep({"repo": "numkit", "path": "statistics.py", "func_name": "NormalDist.mean"})
    assert not keep({"repo": "textkit", "path": "statistics.py", "func_name": "mean"})
    assert not keep({"repo": "numkit", "path": "fractions.py", "func_name": "mean"})
    assert CodeFilter(path_glob="pkg/*/io.py").keeps({"path": "pkg/sub/io.py"})
    assert not CodeFilter(path_glob="pkg/*/io.py").keeps({"path": "other/sub/io.py"})
    with pytest.raises(CodeFilterError, match="not a module name"):
        CodeFilter(module="json; drop")


def test_source_file_of_a_hit_is_the_real_file(service, app_root):
    hit = service.search_code(QUERY, k=1, module="shlex").hits[0]
    path = service.source_file(hit)
    assert path == str((app_root["projects"]["textkit"] / "shlex.py").resolve())
    lines = open(path, encoding="utf-8").read().splitlines()
    assert lines[hit.metadata["line"] - 1].lstrip().startswith(("def ", "async def "))
    assert f"def {hit.metadata['func_name'].rsplit('.', 1)[-1]}" in lines[hit.metadata["line"] - 1]
    assert np.isfinite(hit.score)


def test_page_endpoint_takes_the_filters_and_links_the_files(running_app, service, app_root):
    from gradio_client import Client

    client = Client(running_app, verbose=False)
    status, cards = client.predict(QUERY, 5, "stdlib", "textkit", "", "s*.py", "method", True, "hybrid",
                                   api_name="/search_code")
    expected = service.search_code(QUERY, 5, package="textkit", path_glob="s*.py", kind="method",
                                   exclude_tests=True).hits
    assert "5 results" in status and cards.count("mmssl-card'") == 5
    assert all(f"data-copy='{service.source_file(h)}:{h.metadata['line']}'" in cards for h in expected)
    shlex_file = (app_root["projects"]["textkit"] / "shlex.py").resolve()
    assert f"href='vscode://file{shlex_file}:{expected[0].metadata['line']}'" in cards
    status, _ = client.predict(QUERY, 5, "stdlib", "(all)", "", "", "class", False, "hybrid", api_name="/search_code")
    assert "kind must be one of" in status
