"""The registry of corpora: fetch their sources and build them by name.

Each corpus module exposes ``fetch()`` and ``build(out_dir=None, *, force=False, limit=None) ->
CorpusReport``. Dispatch is by this explicit table, never by matching parts of names.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from mmssl.data.report import CorpusReport

CORPORA: dict[str, str] = {
    "emoji": "mmssl.data.emoji",
    "clipart": "mmssl.data.clipart",
    "stamps": "mmssl.data.stamps",
    "game-icons": "mmssl.data.game_icons",
    "code": "mmssl.data.code",
    "iconsets": "mmssl.data.iconsets",
    "emoji-artworks": "mmssl.data.emoji_artworks",
}
IMAGE_CORPORA = ("emoji", "clipart", "stamps", "game-icons")
# The large training corpora (~76k icons, a 104 MB download, ~70 min of rendering on 2 cores): built
# only by name (`make data-large`), never by `make data` or the demo.
LARGE_IMAGE_CORPORA = ("iconsets", "emoji-artworks")
DEFAULT_CORPORA = tuple(name for name in CORPORA if name not in LARGE_IMAGE_CORPORA)
# What `make test` fetches: small sources (the emoji font and CLDR files, ~11 MB). The code corpus's
# stdlib part needs no fetch; its wheels and the other image sources come with `make data`.
SMALL_CORPORA = ("emoji",)


class UnknownCorpusError(KeyError):
    def __str__(self) -> str:
        return f"unknown corpus {self.args[0]!r}; known: {', '.join(CORPORA)}"


def corpus_module(name: str):
    if name not in CORPORA:
        raise UnknownCorpusError(name)
    return importlib.import_module(CORPORA[name])


def fetch(names: list[str] | tuple[str, ...]) -> None:
    for name in names:
        corpus_module(name).fetch()


def build(names: list[str] | tuple[str, ...], force: bool = False, limit: int | None = None,
          out_root: Path | None = None) -> list[CorpusReport]:
    """Fetch (if needed) and build each corpus; returns their reports in order."""
    reports = []
    for name in names:
        module = corpus_module(name)
        module.fetch()
        out_dir = Path(out_root) / name if out_root is not None else None
        reports.append(module.build(out_dir, force=force, limit=limit))
    return reports
