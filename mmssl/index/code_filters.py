"""The code filters users pick in the page, the CLI and the REST API, as one typed value:

    CodeFilter(package="numkit", path_glob="*/stat*.py", kind="method", exclude_tests=True).as_filter()

``package`` and ``module`` become a dict filter (SQLite picks the rows); a path glob, function vs
method, or "exclude tests" add a Python check over the rows (:mod:`mmssl.index.filters` runs callables
in Python). A method is a function defined in a class (``Class.method``); a test is anything in a ``test``/``tests`` folder, a ``test_*.py`` or
``*_test.py`` file, or named ``test*``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from mmssl.index.filters import Filter, matches

FUNCTION_KINDS = ("any", "function", "method")
MODULE_NAME = re.compile(r"[A-Za-z_][\w.]*")
_TEST_FOLDERS = {"test", "tests", "testing"}


class CodeFilterError(ValueError):
    """A filter value the user can fix (the message says how)."""


def is_method(metadata: dict) -> bool:
    """Whether the function is defined in a class: the extraction names it ``Class.method`` (functions
    inside functions are not indexed, so a ``.`` always means a class)."""
    return "." in str(metadata.get("func_name", ""))


def is_test(metadata: dict) -> bool:
    """Whether the function is test code: in a test folder or file, or named ``test*``."""
    path = str(metadata.get("path", "")).replace("\\", "/")
    folders, _, file = path.rpartition("/")
    if any(part.lower() in _TEST_FOLDERS for part in folders.split("/")):
        return True
    if file.startswith("test_") or file.endswith("_test.py") or file in ("conftest.py", "tests.py"):
        return True
    name = str(metadata.get("func_name", "")).rsplit(".", 1)[-1]
    return name.lower().startswith("test")


@dataclass(frozen=True)
class CodeFilter:
    """What a code search keeps. Empty strings and ``"any"`` keep everything."""

    package: str = ""
    module: str = ""
    path_glob: str = ""
    kind: str = "any"
    exclude_tests: bool = False

    def __post_init__(self):
        module = (self.module or "").strip()
        if module and not MODULE_NAME.fullmatch(module):
            raise CodeFilterError(f"{module!r} is not a module name; use dotted names like json or urllib.parse.")
        if self.kind not in FUNCTION_KINDS:
            raise CodeFilterError(f"kind must be one of {', '.join(FUNCTION_KINDS)}, not {self.kind!r}.")
        object.__setattr__(self, "module", module)
        object.__setattr__(self, "package", (self.package or "").strip())
        object.__setattr__(self, "path_glob", (self.path_glob or "").strip())

    @property
    def is_empty(self) -> bool:
        return self.as_filter() is None

    def fields(self) -> dict:
        """The SQL-able part: ``{"repo": package, "module": module}`` (only those set)."""
        out = {}
        if self.package:
            out["repo"] = self.package
        if self.module:
            out["module"] = self.module
        return out

    def keeps(self, metadata: dict) -> bool:
        """Whether one item's metadata passes the Python-only checks (glob, kind, tests)."""
        if self.path_glob and not _glob_matches(self.path_glob, str(metadata.get("path", ""))):
            return False
        if self.kind != "any" and is_method(metadata) != (self.kind == "method"):
            return False
        return not (self.exclude_tests and is_test(metadata))

    def as_filter(self) -> Filter | None:
        """A filter for :meth:`mmssl.index.Index.search` (None: keep everything)."""
        fields = self.fields()
        if not (self.path_glob or self.kind != "any" or self.exclude_tests):
            return fields or None
        return lambda metadata: matches(fields or None, metadata) and self.keeps(metadata)


def _glob_matches(pattern: str, path: str) -> bool:
    """``fnmatch`` over the whole path, or over its file name when the pattern has no ``/``."""
    path = path.replace("\\", "/")
    if "/" not in pattern:
        return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern) or fnmatch.fnmatchcase(path, pattern)
    return fnmatch.fnmatchcase(path, pattern)
