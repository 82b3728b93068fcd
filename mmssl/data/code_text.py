"""What a code search index embeds for one function record: two index-text variants.

* ``"code"`` -- CodeSearchNet's form: the function's ``code``, docstring cut out. Right for the
  CSN protocol, where the docstring *is* the query, so leaving it in would leak the answer.
* ``"full"`` -- what a user's code has, for the search product: a header line with the module and
  the qualified name (so the enclosing class is there: ``Path.with_suffix``), then the function
  as written, signature, whole docstring and body (``original_string``)::

      # pathlib: PurePath.with_suffix
      def with_suffix(self, suffix):
          \"\"\"Return a new path with the file suffix changed. ...\"\"\"
          f = self._flavour
          ...

An undocumented function (``extract_folder(..., require_docstring=False)``) is found by its name and
body alone; the two variants then differ only by the header.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath

INDEX_TEXTS = ("full", "code")
DEFAULT_INDEX_TEXT = "full"
_WORD = re.compile(r"\w+")


def module_of(path: str) -> str:
    """``"urllib/parse.py"`` -> ``"urllib.parse"``; ``"json/__init__.py"`` -> ``"json"``."""
    parts = list(PurePosixPath(path.replace(os.sep, "/")).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def check_index_text(variant: str) -> str:
    if variant not in INDEX_TEXTS:
        raise ValueError(f"unknown index text {variant!r}; choose one of {', '.join(INDEX_TEXTS)} "
                         "(full = name + signature + class + docstring + body, code = docstring cut)")
    return variant


def index_text(record: dict, variant: str = DEFAULT_INDEX_TEXT) -> str:
    """The text to embed for a CodeSearchNet-style ``record`` (see the module docstring)."""
    if check_index_text(variant) == "code":
        return record["code"]
    body = record.get("original_string") or record["code"]
    module = module_of(record.get("path", ""))
    name = record.get("func_name", "")
    header = f"# {module}: {name}" if module else f"# {name}"
    return f"{header}\n{body}"


def text_words(text: str) -> list[str]:
    """Word tokens of any text (identifiers whole: ``parse_qs``), for BM25 over index texts."""
    return _WORD.findall(text)
