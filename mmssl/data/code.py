"""The code corpus: Python functions paired with their docstrings, CodeSearchNet-style.

Sources, read in this order (the order decides which copy of a duplicated function is kept):

1. the standard library of the running interpreter (its test suites left out);
2. the pinned wheels in :data:`WHEELS`, fetched by :func:`fetch` with ``pip download --no-deps`` and
   read as zip files (only their ``.py`` members; nothing is installed or imported);
3. optionally, the packages installed in this interpreter's site-packages (off by default: they
   differ from machine to machine, so a corpus built with them is not reproducible elsewhere).

A user's own project goes through :func:`extract_folder` with the same rules, or with
``require_docstring=False``, which keeps undocumented functions too (the search index finds them by
their code and name; everything else -- tests, dunders, stubs, short bodies, duplicates -- still
goes).

Rules follow CodeSearchNet (Husain et al., 2019, §2.1): top-level functions and methods (nested
functions stay part of their parent) whose docstring's first paragraph has at least 3 words and
whose code, docstring removed, has at least 3 lines; no test functions (``test`` in the qualified
name, or a file under a test folder), no dunder methods, no stubs (a body of only ``pass``, ``...``
or ``raise NotImplementedError`` after the docstring), exact duplicates dropped (the hash of the
code's token stream, so formatting and comments don't hide a copy). Files that are not valid
Python, not decodable (PEP 263 cookies are honoured) or over 1 MB are skipped and counted by reason.

``original_string`` runs from ``def`` to the function's last token (decorators are not part of it,
as in CodeSearchNet); ``code`` is the same text with the docstring's lines cut out.

Each record carries CodeSearchNet's fields, so a user's copy of the real CodeSearchNet loads the
same way, plus ``split`` (same as ``partition``), ``signature``, ``line`` and ``group``::

    {"repo": "stdlib", "path": "urllib/parse.py", "func_name": "parse_qs",
     "original_string": "def parse_qs(qs, ...):\\n    \\"\\"\\"Parse a query ...", "language": "python",
     "code": "def parse_qs(qs, ...):\\n    parsed_result = {}\\n ...", "code_tokens": ["def", ...],
     "docstring": "Parse a query string given as a string argument.", "docstring_tokens": [...],
     "url": "urllib/parse.py:687", "partition": "test", "split": "test",
     "signature": "def parse_qs(qs, keep_blank_values=False, ...)", "line": 687, "group": "stdlib/urllib"}

Splits are by *group*: ``<repo>/<top-level subpackage or module>`` (``stdlib/email``,
``pandas/core``, ``requests/api``), so a function's file neighbours never straddle two splits.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import re
import site
import sys
import sysconfig
import time
import tokenize
import warnings
import zipfile
from collections import Counter, defaultdict
from functools import partial
from multiprocessing import Pool
from pathlib import Path, PurePosixPath
from typing import Iterator

from tqdm import tqdm

from mmssl.data.corpus import write_splits
from mmssl.data.fetch import fetch_wheels
from mmssl.data.paths import corpus_dir, raw_dir
from mmssl.data.report import CorpusReport
from mmssl.data.reserved import is_reserved_code_package
from mmssl.data.splits import SPLITS, split_of

# Well-documented libraries, pinned. Binary wheels are fine: only their .py members are read.
# The 34 wheels are 161 MB to download (scipy 41 MB, numpy 16 MB, scikit-image 15 MB, pandas and
# scikit-learn 13 MB each); with the stdlib they give ~41,600 pairs (a target of >= 40,000).
WHEELS = [
    "pandas==2.2.3",
    "scikit-learn==1.5.2",
    "scipy==1.14.1",
    "numpy==2.1.3",
    "statsmodels==0.14.4",
    "scikit-image==0.24.0",
    "seaborn==0.13.2",
    "sympy==1.13.3",
    "mpmath==1.3.0",
    "networkx==3.4.2",
    "astropy==6.1.4",
    "matplotlib==3.9.2",
    "xarray==2024.10.0",
    "dask==2024.10.0",
    "nltk==3.9.1",
    "Django==5.1.4",
    "SQLAlchemy==2.0.36",
    "alembic==1.14.0",
    "Twisted==24.11.0",
    "tornado==6.4.1",
    "requests==2.32.3",
    "Flask==3.1.0",
    "Werkzeug==3.1.3",
    "Jinja2==3.1.4",
    "click==8.1.7",
    "attrs==24.2.0",
    "docutils==0.21.2",
    "Sphinx==8.1.3",
    "Pygments==2.18.0",
    "ipython==8.29.0",
    "prompt_toolkit==3.0.48",
    "rich==13.9.4",
    "pillow==11.0.0",
    "more-itertools==10.5.0",
]

STDLIB = "stdlib"
LANGUAGE = "python"
MAX_FILE_BYTES = 1_000_000
MIN_DOCSTRING_WORDS = 3
MIN_CODE_LINES = 3
# Folders never read: test suites (CodeSearchNet drops test code), vendored copies of other projects
# (they would leak near-duplicates across packages), caches and environments.
TEST_DIRS = frozenset({"test", "tests", "testing", "_testing", "idle_test", "unittests"})
SKIP_DIRS = frozenset({"__pycache__", "site-packages", "dist-packages", "node_modules", ".git", ".hg",
                       ".tox", ".venv", "venv", ".eggs", "_vendor", "vendor", "_vendored",
                       "vendored", "externals", "_externals", "turtledemo"})
_WORD = re.compile(r"\w+")
_DOC_TOKEN = re.compile(r"\w+|[^\w\s]")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SKIP_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                tokenize.ENDMARKER, tokenize.ENCODING}


class SkipFile(Exception):
    """A file that cannot be read as Python source; ``args[0]`` is the reason for the report."""


# --------------------------------------------------------------------------------------- one file

def decode_source(data: bytes) -> str:
    """Bytes of a ``.py`` file -> text, honouring a PEP 263 coding cookie and a UTF-8 BOM.

    Raises :class:`SkipFile` ("huge file", "bad encoding cookie", "not utf-8", "not <encoding>").
    """
    if len(data) > MAX_FILE_BYTES:
        raise SkipFile(f"huge file (> {MAX_FILE_BYTES // 1_000_000} MB)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as e:
        if "invalid or missing encoding declaration" in str(e):  # a first line that is not UTF-8
            raise SkipFile("not utf-8") from None
        raise SkipFile("bad encoding cookie") from None  # unknown codec, or a cookie contradicting a BOM
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise SkipFile("not utf-8" if encoding.startswith("utf-8") else f"not {encoding}") from None


def is_test_path(path: str) -> bool:
    """True for files CodeSearchNet-style filtering drops wholesale: test folders and test modules."""
    parts = PurePosixPath(path).parts
    name = parts[-1] if parts else ""
    return (any(p in TEST_DIRS for p in parts[:-1]) or name.startswith("test_") or name.endswith("_test.py")
            or name in ("conftest.py", "tests.py", "test.py"))


def group_of(repo: str, path: str) -> str:
    """The split group of a file: ``<repo>/<top-level subpackage or module>``.

    The standard library's paths start at its top-level modules (``email/utils.py`` ->
    ``stdlib/email``); a distribution's paths start with its top-level package
    (``pandas/core/frame.py`` -> ``pandas/core``; a lone top-level module ``six.py`` -> ``six/six``).
    """
    parts = PurePosixPath(path).with_suffix("").parts
    if not parts:
        return f"{repo}/"
    key = parts[0] if repo == STDLIB or len(parts) == 1 else parts[1]
    return f"{repo}/{key}"


def code_hash(code_tokens: list[str]) -> str:
    """Hash of the normalised code: its token stream (whitespace, comments and docstring ignored)."""
    return hashlib.sha1("\x1f".join(code_tokens).encode("utf-8")).hexdigest()


def _line_offsets(text: str) -> tuple[list[str], list[int]]:
    # Python's own line breaks (\n, \r\n, \r), not str.splitlines, which also splits on \f and \x1c.
    lines = io.StringIO(text, newline="").readlines()
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line)
    starts.append(pos)
    return lines, starts


class _Source:
    """A file's text with (line, UTF-8 byte column) -> character offset, as ``ast`` positions are."""

    def __init__(self, text: str):
        self.text = text
        self.lines, self.starts = _line_offsets(text)

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1] if lineno - 1 < len(self.lines) else ""
        if not line.isascii():
            col = len(line.encode("utf-8")[:col].decode("utf-8", "ignore"))
        return self.starts[lineno - 1] + col

    def line_bounds(self, pos: int) -> tuple[int, int]:
        """(start, end) of the line holding character ``pos``; end is past its line break."""
        start = self.text.rfind("\n", 0, pos) + 1
        start = max(start, self.text.rfind("\r", 0, pos) + 1)
        m = _LINE_BREAK.search(self.text, pos)
        return start, (m.end() if m else len(self.text))


def _functions(tree: ast.Module) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
    """Top-level functions and methods (classes nest, functions don't), with qualified names.

    Definitions under ``if``/``try``/``with`` blocks count (the stdlib defines many that way).
    """
    def walk(node: ast.AST, prefix: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield child, prefix + child.name
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                yield from walk(child, prefix)

    yield from walk(tree, "")


def first_paragraph(docstring: str) -> str:
    """The docstring's first paragraph on one line (whitespace collapsed)."""
    return " ".join(_PARAGRAPH_BREAK.split(docstring.strip(), maxsplit=1)[0].split())


def docstring_tokens(text: str) -> list[str]:
    """A simple word tokenizer for natural language: words and single punctuation marks."""
    return _DOC_TOKEN.findall(text)


def code_tokens(code: str, indent: str = "") -> list[str]:
    """Python tokens of ``code`` (comments, newlines and indentation left out).

    ``indent`` is the whitespace before the first line in its file (a method's ``def`` is
    indented, its body lines keep their file indentation), so the tokenizer sees the layout it had.
    """
    try:
        toks = tokenize.generate_tokens(io.StringIO(indent + code).readline)
        return [t.string for t in toks if t.type not in _SKIP_TOKENS]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return _DOC_TOKEN.findall(code)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    try:
        sig = f"{prefix} {node.name}({ast.unparse(node.args)})"
        return sig + (f" -> {ast.unparse(node.returns)}" if node.returns is not None else "")
    except Exception:  # an unparser gap must not lose the function
        return f"{prefix} {node.name}(...)"


def _is_stub(stmt: ast.stmt) -> bool:
    """``pass``, ``...`` or ``raise NotImplementedError``: a body that says nothing."""
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and stmt.value.value is Ellipsis:
        return True
    if isinstance(stmt, ast.Raise) and stmt.exc is not None:
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def _cut_docstring(src: _Source, func_start: int, func_end: int, doc: ast.Expr) -> str:
    """The function's source with the docstring cut out; everything else byte-identical.

    A docstring alone on its lines (the usual case) takes its whole lines with it, trailing comment
    included; one sharing a line with other code takes only itself and a following ``;``.
    """
    start = src.offset(doc.lineno, doc.col_offset)
    end = src.offset(doc.end_lineno, doc.end_col_offset)
    line_start, _ = src.line_bounds(start)
    _, line_end = src.line_bounds(end)
    before = src.text[max(line_start, func_start):start]
    after = src.text[end:line_end]
    if not before.strip() and (not after.strip() or after.strip().startswith("#")):
        start, end = max(line_start, func_start), min(line_end, func_end)
    else:
        m = re.match(r"[ \t]*;[ \t]*", after)
        if m:
            end += m.end()
    return src.text[func_start:start] + src.text[end:func_end]


def _extract(text: str, path: str, repo: str,
             require_docstring: bool = True) -> tuple[list[dict], list[tuple[str, str]]]:
    """One file's records and the (reason, where) of everything it skipped; bad input is a skip.

    ``require_docstring=False`` keeps functions without a docstring (or with a short one) too: a
    search product finds them by their code and name. Their ``docstring`` is ``""`` (or the short
    one) and ``code`` equals ``original_string`` when there is no docstring to cut.
    """
    skips: list[tuple[str, str]] = []
    if is_test_path(path):
        return [], [("test file", f"{repo}:{path}")]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences etc. in old sources
            tree = ast.parse(text, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return [], [("syntax error", f"{repo}:{path}")]
    src = _Source(text)
    group = group_of(repo, path)
    split = split_of(group)
    records = []
    for node, qualname in _functions(tree):
        where = f"{repo}:{path}:{node.lineno}"
        if node.name.startswith("__") and node.name.endswith("__"):
            skips.append(("dunder method", where))
            continue
        if "test" in qualname.lower():
            skips.append(("test function", where))
            continue
        docstring = ast.get_docstring(node, clean=True)
        if not docstring and require_docstring:
            skips.append(("no docstring", where))
            continue
        summary = first_paragraph(docstring or "")
        if len(_WORD.findall(summary)) < MIN_DOCSTRING_WORDS and require_docstring:
            skips.append(("short docstring (< 3 words)", where))
            continue
        func_start = src.offset(node.lineno, node.col_offset)
        func_end = src.offset(node.end_lineno, node.end_col_offset)
        original = text[func_start:func_end]
        code = _cut_docstring(src, func_start, func_end, node.body[0]) if docstring is not None else original
        if sum(1 for line in io.StringIO(code, newline="") if line.strip()) < MIN_CODE_LINES:
            skips.append(("short function (< 3 lines)", where))
            continue
        body = node.body[1:] if docstring is not None else node.body
        if all(_is_stub(stmt) for stmt in body):  # abstract or placeholder: no code to find
            skips.append(("stub function (docstring only)", where))
            continue
        indent = text[src.line_bounds(func_start)[0]:func_start]
        records.append({
            "repo": repo,
            "path": path,
            "func_name": qualname,
            "original_string": original,
            "language": LANGUAGE,
            "code": code,
            "code_tokens": code_tokens(code, indent if not indent.strip() else ""),
            "docstring": summary,
            "docstring_tokens": docstring_tokens(summary),
            "url": f"{path}:{node.lineno}",
            "partition": split,
            "split": split,
            "signature": _signature(node),
            "line": node.lineno,
            "group": group,
        })
    return records, skips


def extract_source(text: str, path: str, repo: str, require_docstring: bool = True) -> list[dict]:
    """Records of one file's functions that pass the filters (not deduplicated across files).

    Bad input (not Python, a test file) gives ``[]``; nothing is raised. ``path`` is the file's path
    inside its repo (``urllib/parse.py``), which also decides its split group.
    ``require_docstring=False`` keeps undocumented functions (see :func:`_extract`).
    """
    try:
        return _extract(text, path, repo, require_docstring)[0]
    except Exception:  # a parser corner we have not met must cost one file, not the corpus
        return []


# ------------------------------------------------------------------------------ files and sources

# A unit of work the pool can pickle: (container, member, path, repo). container is a wheel (zip)
# and member its entry, or None and member a file on disk; path is what records show.
_Task = tuple[str | None, str, str, str]
_open_zips: dict[str, zipfile.ZipFile] = {}  # per process: open each wheel once


def _forget_zips() -> None:
    """Drop the open wheels: a forked worker must not share its parent's file offsets."""
    for zf in _open_zips.values():
        zf.close()
    _open_zips.clear()


def _read(container: str | None, member: str) -> bytes:
    if container is None:
        if os.path.getsize(member) > MAX_FILE_BYTES:
            raise SkipFile(f"huge file (> {MAX_FILE_BYTES // 1_000_000} MB)")
        return Path(member).read_bytes()
    zf = _open_zips.get(container)
    if zf is None:
        zf = _open_zips[container] = zipfile.ZipFile(container)
    if zf.getinfo(member).file_size > MAX_FILE_BYTES:
        raise SkipFile(f"huge file (> {MAX_FILE_BYTES // 1_000_000} MB)")
    return zf.read(member)


def _process(task: _Task, require_docstring: bool = True) -> tuple[list[dict], list[tuple[str, str]]]:
    container, member, path, repo = task
    try:
        text = decode_source(_read(container, member))
    except SkipFile as e:
        return [], [(e.args[0], f"{repo}:{path}")]
    except (OSError, zipfile.BadZipFile, KeyError):
        return [], [("unreadable file", f"{repo}:{path}")]
    try:
        return _extract(text, path, repo, require_docstring)
    except Exception as e:  # never fatal: count it and go on
        return [], [(f"extraction error ({type(e).__name__})", f"{repo}:{path}")]


def _in_skipped_dir(parts: tuple[str, ...]) -> bool:
    return any(p in SKIP_DIRS or p.startswith(".") for p in parts)


def _folder_tasks(folder: Path, repo: str, report: CorpusReport) -> Iterator[_Task]:
    """Sorted ``.py`` files under ``folder``; test files are counted, not read; environments,
    caches and vendored folders are not entered."""
    folder = Path(folder)
    for dirpath, dirnames, filenames in os.walk(folder):
        rel_dir = Path(dirpath).relative_to(folder)
        keep = []
        for d in sorted(dirnames):
            if d in SKIP_DIRS or d.startswith(".") or (repo == STDLIB and d.startswith("config-")):
                continue  # config-3.x-<platform>: the build's Makefile and python-config, not library code
            keep.append(d)
        dirnames[:] = keep  # os.walk descends only into these, in this order
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            rel = (rel_dir / name).as_posix()
            if is_test_path(rel):
                report.skip("test file", f"{repo}:{rel}")
                continue
            yield None, str(Path(dirpath) / name), rel, repo


def stdlib_dir() -> Path:
    """The running interpreter's standard library folder."""
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_tasks(report: CorpusReport) -> Iterator[_Task]:
    # Test suites (test/, idlelib/idle_test/, lib2to3/tests/, ...) are dropped by TEST_DIRS.
    yield from _folder_tasks(stdlib_dir(), STDLIB, report)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_repo(spec: str) -> str:
    return _canonical(spec.partition("==")[0])


def wheel_files(specs: list[str] = WHEELS) -> tuple[dict[str, Path], list[str]]:
    """The fetched wheel of each spec (repo name -> file) and the specs not fetched yet."""
    folder = raw_dir("wheels")
    have = {}
    for whl in sorted(folder.glob("*.whl")) if folder.exists() else []:
        name, version = whl.name.split("-")[:2]
        have[(_canonical(name), version)] = whl
    found, missing = {}, []
    for spec in specs:
        name, _, version = spec.partition("==")
        whl = have.get((_canonical(name), version))
        if whl is None:
            missing.append(spec)
        else:
            found[_canonical(name)] = whl
    return found, missing


def _wheel_tasks(wheel: Path, repo: str, report: CorpusReport) -> Iterator[_Task]:
    with zipfile.ZipFile(wheel) as zf:
        members = sorted(i.filename for i in zf.infolist() if i.filename.endswith(".py"))
    for member in members:
        parts = PurePosixPath(member).parts
        if parts[0].endswith((".dist-info", ".data")):
            continue
        if is_test_path(member):
            report.skip("test file", f"{repo}:{member}")
            continue
        if _in_skipped_dir(parts[:-1]):
            report.skip("vendored or environment folder", f"{repo}:{member}")
            continue
        yield str(wheel), member, member, repo


def _site_packages_tasks(report: CorpusReport, skip_repos: set[str]) -> Iterator[_Task]:
    """Installed distributions (by their RECORD files), except those the wheels already cover."""
    from importlib import metadata

    roots = [Path(p).resolve() for p in site.getsitepackages() + [site.getusersitepackages()] if Path(p).is_dir()]
    seen = set(skip_repos) | {"mmssl"}
    dists = sorted(metadata.distributions(), key=lambda d: _canonical(d.metadata["Name"] or ""))
    for dist in dists:
        repo = _canonical(dist.metadata["Name"] or "")
        if not repo or repo in seen:
            continue
        seen.add(repo)
        if is_reserved_code_package(repo):
            report.skip("reserved package (DESIGN.md §2)", repo)
            continue
        base = Path(dist.locate_file("")).resolve()
        if base not in roots:
            continue
        for rel in sorted(str(f) for f in dist.files or [] if str(f).endswith(".py")):
            parts = PurePosixPath(rel).parts
            if ".." in parts:
                continue
            if is_test_path(rel):
                report.skip("test file", f"{repo}:{rel}")
                continue
            if _in_skipped_dir(parts[:-1]):
                continue
            yield None, str(base / rel), rel, repo


def _records(tasks: list[_Task], report: CorpusReport, seen: set[str], *, workers: int = 1,
             limit: int | None = None, desc: str = "code", require_docstring: bool = True) -> Iterator[dict]:
    """Extract every task (in order, ``workers`` processes), dropping duplicate code; counts skips."""
    process = partial(_process, require_docstring=require_docstring)  # picklable for the pool

    def results():
        if workers > 1 and len(tasks) > 1:
            # __exit__ terminates the workers, also on an early stop
            with Pool(workers, initializer=_forget_zips) as pool:
                yield from pool.imap(process, tasks, chunksize=8)  # imap keeps the task order
        else:
            try:
                yield from map(process, tasks)
            finally:
                _forget_zips()

    produced = 0
    stream = results()
    try:
        for records, skips in tqdm(stream, total=len(tasks), desc=desc, unit="file", mininterval=1.0,
                                   disable=None):
            for reason, where in skips:
                report.skip(reason, where)
            for rec in records:
                h = code_hash(rec["code_tokens"])
                if h in seen:
                    report.skip("duplicate code", f"{rec['repo']}:{rec['url']}")
                    continue
                seen.add(h)
                yield rec
                produced += 1
                if limit is not None and produced >= limit:
                    return
    finally:
        stream.close()  # stops the pool now, not whenever the generator is collected


def extract_folder(folder: Path, report: CorpusReport, repo: str | None = None,
                   require_docstring: bool = True) -> Iterator[dict]:
    """Records of a user's Python project (deduplicated), with skipped files counted in ``report``.

    ``repo`` defaults to the folder's name; paths are relative to ``folder``. ``require_docstring``
    keeps CodeSearchNet's rule (a pair needs a docstring); ``False`` also yields undocumented
    functions, which a search product finds by their code and name.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder; pass the root of your Python project")
    repo = repo or folder.resolve().name
    tasks = list(_folder_tasks(folder, repo, report))
    yield from _records(tasks, report, set(), desc=repo, require_docstring=require_docstring)


# --------------------------------------------------------------------------------- corpus build

def fetch() -> None:
    """Download the pinned wheels into ``data/raw/wheels`` (present ones are kept)."""
    fetch_wheels(WHEELS)


def split_overlap(out_dir: Path) -> dict:
    """Leak check read back from the written split files.

    Returns the number of code hashes and of groups found in more than one split (both must be 0)
    and, for information, how many first-paragraph docstrings recur across splits (generic
    summaries such as "Return the number of items." do).
    """
    by_split: dict[str, dict[str, set]] = {}
    for split in SPLITS:
        hashes, groups, docs = set(), set(), set()
        path = Path(out_dir) / f"{split}.jsonl"
        if path.exists():
            with open(path, encoding="utf-8") as f:
                for line in f:
                    rec = json.loads(line)
                    hashes.add(code_hash(rec["code_tokens"]))
                    groups.add(rec.get("group", ""))
                    docs.add(rec["docstring"])
        by_split[split] = {"hashes": hashes, "groups": groups, "docs": docs}

    def across(key: str) -> int:
        counts = Counter(x for s in SPLITS for x in by_split[s][key])
        return sum(1 for c in counts.values() if c > 1)

    return {"code_hashes_in_two_splits": across("hashes"), "groups_in_two_splits": across("groups"),
            "docstrings_in_two_splits": across("docs")}


def _params(limit: int | None, include_site_packages: bool, include_wheels: bool) -> dict:
    wheels = sorted(p.name for p in wheel_files()[0].values()) if include_wheels else []
    return {"python": sys.version.split()[0], "wheels": wheels, "limit": limit,
            "include_site_packages": include_site_packages}


def build(out_dir: Path | None = None, *, force: bool = False, limit: int | None = None,
          include_site_packages: bool = False, include_wheels: bool = True,
          workers: int | None = None) -> CorpusReport:
    """Build the code corpus into ``out_dir`` (default ``data/corpora/code``) and return its report.

    Idempotent: an existing build with the same sources and options is returned as saved unless
    ``force``. Wheels not fetched yet are left out (listed in ``report.extra["missing_wheels"]``;
    run :func:`fetch` first). ``limit`` caps the number of records (stdlib first: a quick look).
    ``workers`` defaults to min(2, CPU count) processes.
    """
    out_dir = Path(out_dir) if out_dir is not None else corpus_dir("code")
    report_path = out_dir / "report.json"
    params = _params(limit, include_site_packages, include_wheels)
    if report_path.exists() and not force and all((out_dir / f"{s}.jsonl").exists() for s in SPLITS):
        saved = CorpusReport.load(report_path)
        if saved.extra.get("params") == params:
            return saved

    t0 = time.perf_counter()
    report = CorpusReport("code")
    tasks = list(_stdlib_tasks(report))
    sources = {STDLIB: f"Python {params['python']} ({stdlib_dir()})"}
    missing: list[str] = []
    if include_wheels:
        wheels, missing = wheel_files()
        for spec in missing:
            warnings.warn(f"code corpus: wheel {spec} not fetched; run mmssl.data.code.fetch() to include it")
        for repo, whl in wheels.items():
            if is_reserved_code_package(repo):
                report.skip("reserved package (DESIGN.md §2)", repo)
                continue
            tasks += _wheel_tasks(whl, repo, report)
            sources[repo] = whl.name
    if include_site_packages:
        tasks += _site_packages_tasks(report, set(sources))
    workers = workers or min(2, os.cpu_count() or 1)

    per_repo: dict[str, Counter] = defaultdict(Counter)
    groups: dict[str, set] = {s: set() for s in SPLITS}

    def tally(records: Iterator[dict]) -> Iterator[dict]:
        for rec in records:
            per_repo[rec["repo"]][rec["split"]] += 1
            groups[rec["split"]].add(rec["group"])
            yield rec

    counts = write_splits(tally(_records(tasks, report, set(), workers=workers, limit=limit)), out_dir)
    report.pairs = counts
    report.extra = {
        "params": params,
        "sources": sources,
        "missing_wheels": missing,
        "files": len(tasks),
        "groups_per_split": {s: len(groups[s]) for s in SPLITS},
        "per_repo": {repo: dict(c, total=sum(c.values())) for repo, c in sorted(per_repo.items())},
        "overlap": split_overlap(out_dir),
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    report.save(report_path)
    return report
