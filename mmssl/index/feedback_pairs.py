"""An index's 👍 votes as training pairs: ``mmssl train clip|code --data feedback:NAME``.

    name, report = training_corpus(DataSpec.parse("feedback:my-photos"))   # -> corpora/user-feedback-<hash>/
    held_out = held_out_queries(name)          # the voted queries never trained on, to evaluate the new model

Every (query, item) pair whose latest vote is 👍 (:mod:`mmssl.eval.user_queries` folds the votes)
becomes one pair, the item as the index holds it: an image's file, a function's source (what the index
embedded, its ``full`` text). 👎 votes are kept out: the recipe's loss contrasts each pair with the
other pairs of its batch and takes no extra negatives, so a 👎 item would need a loss change to count.

Split by query (:func:`mmssl.data.splits.split_of`, ~70/10/20): a query's every pair is on one side,
and the held-out queries (valid + test) are what a retrained model is evaluated on, beside the old one.
A vote on an item that is no longer in the index (a rebuilt folder) is skipped and counted.
"""

from __future__ import annotations

from pathlib import Path

from mmssl.data.report import CorpusReport
from mmssl.data.splits import split_of
from mmssl.data.user import DataSpec, DataSpecError, user_corpus, write_user_corpus
from mmssl.eval.user_queries import UserQuery

FEEDBACK_SUFFIX = ".feedback.jsonl"
HELD_OUT = ("valid", "test")


def feedback_path(index_folder: str | Path) -> Path:
    """``indexes/NAME`` -> ``indexes/NAME.feedback.jsonl`` (beside the index, so rebuilds keep it)."""
    folder = Path(index_folder)
    return folder.parent / f"{folder.name}{FEEDBACK_SUFFIX}"


def _items(index) -> list[dict]:
    """Every live item's metadata with its ``path``, in id order."""
    return [{"path": row.path, **row.metadata} for row in index.store.live_rows()]


def _record(query: str, reference: str, item: dict, code: bool) -> dict:
    split = split_of(f"feedback:{query}")
    if code:  # the function as the index embedded it; the query is what its docstring view reads
        return {**item, "code": item.get("original_string", ""), "docstring": query, "item": reference,
                "split": split}
    return {"id": f"feedback:{item['path']}", "image": item["path"], "text": query, "captions": [query],
            "source": "feedback", "item": reference, "split": split}


def _voted_queries(folder: Path):
    from mmssl.eval.user_queries import QueriesFileError, parse_user_queries

    path = feedback_path(folder)
    if not path.is_file():
        raise DataSpecError(f"feedback:{folder.name}: no votes yet ({path} is missing); rate results with 👍 in the "
                            "app's search tabs first")
    try:
        return parse_user_queries(path.read_text(encoding="utf-8"), str(path))
    except QueriesFileError as e:
        raise DataSpecError(str(e)) from None


def _exact_references(items: list[dict], item_kind: str) -> dict[str, list[int]]:
    """The reference a vote from the app writes (:meth:`mmssl.app.search.SearchService.item_reference`:
    an image's path; ``path:Qualified.name``, or ``repo/path:...``) -> the items it names exactly."""
    from mmssl.eval.user_queries import code_reference

    exact: dict[str, set[int]] = {}
    for j, item in enumerate(items):
        names = ([code_reference(item), code_reference(item, with_repo=True)] if item_kind == "code"
                 else [item["path"]])
        for reference in names:
            exact.setdefault(reference, set()).add(j)
    return {reference: sorted(found) for reference, found in exact.items()}


def _matches(pairs: list, items: list[dict], item_kind: str, base: str | None, name: str,
             report: CorpusReport) -> list[list[int]]:
    """The items each (query, one reference) pair names; a reference to no item is skipped into ``report``.

    A reference that names one item exactly pairs with it only; one that is looser (a bare function name, a
    whole file, a relative image path) pairs with every item it names, as the evaluation reads it."""
    from mmssl.eval.user_queries import ExpectedItemError, relevance_matrix

    exact = _exact_references(items, item_kind)
    found = []
    for pair in pairs:
        reference = pair.expected[0].strip()
        if reference in exact:
            found.append(exact[reference])
            continue
        try:
            found.append(relevance_matrix([pair], items, item_kind, base, name)[0].nonzero()[0].tolist())
        except ExpectedItemError:
            report.skip("voted item no longer in the index", f"{reference} ({pair.text})")
            found.append([])
    return found


def feedback_records(folder: str | Path) -> tuple[list[dict], CorpusReport, str]:
    """``(records, report, model kind)`` of the index at ``folder``: one record per 👍 pair (see the module
    docstring); the model kind (``"image-text"`` or ``"code"``) says which recipe trains on them.

    Raises:
        DataSpecError: no feedback file, or none of its votes is 👍.
    """
    from mmssl.index import load_index

    folder = Path(folder)
    queries, info = _voted_queries(folder)
    index = load_index(folder)
    try:
        kind, items = index.manifest.model_kind, _items(index)
        base = index.manifest.source.get("folder")
    finally:
        index.close()
    code = kind == "code"
    report = CorpusReport("feedback")
    pairs = [UserQuery(query.text, [reference], query.line) for query in queries for reference in query.expected]
    records = []
    for pair, found in zip(pairs, _matches(pairs, items, "code" if code else "image", base, folder.name, report)):
        records += [_record(pair.text, pair.expected[0], items[j], code) for j in found]
    report.extra.update({"index": str(folder), "split_by": "query", "queries": len(queries),
                         "queries_with_only_down_votes": info["no_positive"]})
    return records, report, kind


def feedback_corpus(spec: DataSpec, root: str | Path | None = None) -> tuple[str, CorpusReport, str]:
    """Write the 👍 pairs of the index ``spec`` names as a corpus; ``(corpus name, report, model kind)``."""
    from mmssl.index import index_folder

    folder = index_folder(str(spec.path))
    records, report, kind = feedback_records(folder)
    name, report = write_user_corpus(DataSpec("feedback", folder), records, report, root)
    return name, report, kind


def training_corpus(spec: str | DataSpec, root: str | Path | None = None) -> tuple[str, CorpusReport]:
    """Any ``--data`` spec (``folder:``, ``project:``, ``feedback:``) as a corpus; ``(name, report)``.

    Raises:
        DataSpecError: a bad spec, or data with no training pair.
    """
    spec = spec if isinstance(spec, DataSpec) else DataSpec.parse(spec)
    if spec.kind != "feedback":
        return user_corpus(spec, root)
    name, report, _ = feedback_corpus(spec, root)
    return name, report


def held_out_queries(corpus: str, root: str | Path | None = None, splits: tuple[str, ...] = HELD_OUT):
    """The queries of a feedback corpus's held-out splits (or other ``splits``), each with the items voted
    👍 for it, as :class:`~mmssl.eval.user_queries.UserQuery` (for
    :func:`mmssl.index.user_eval.evaluate_index_queries`)."""
    from mmssl.data.corpus import CorpusNotBuiltError, load_corpus

    expected: dict[str, list[str]] = {}
    for split in splits:
        try:
            records = load_corpus(corpus, split, Path(root) / "corpora" / corpus if root else None).to_list()
        except CorpusNotBuiltError:
            continue
        for record in records:
            query = record.get("text") or record.get("docstring")
            items = expected.setdefault(query, [])
            if record["item"] not in items:
                items.append(record["item"])
    return [UserQuery(text, items, n) for n, (text, items) in enumerate(expected.items(), 1)]
