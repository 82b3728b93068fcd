"""Staged builds: an index that is searchable part by part while the rest is embedded.

A staged build is a list of :class:`Stage` s; stage ``i`` indexes the items of stages ``0..i`` in
order (the standard library, then the libraries). Each stage swaps a complete index in, so searches
answer from what is built, and keeps its embedding chunks (``indexes/.NAME.build/``) so the next
stage embeds only its new items. The manifest's ``source`` says how far the build got::

    {"type": "code-corpus", ..., "stage": "stdlib", "stages_done": 1, "stages_total": 2, "complete": false}

Run again after a crash or a restart, a staged build skips the stages already in place (same model,
same stage labels) and resumes the unfinished one from its chunks.

    stages = [Stage("stdlib", stdlib_items), Stage("libraries", library_items)]
    build_staged("code", model, stages, source={"type": "code-corpus"}, on_stage=reload)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mmssl.index.build import build_index
from mmssl.index.chunks import DEFAULT_CHUNK_SIZE
from mmssl.index.embedding import DEFAULT_BATCH_SIZE
from mmssl.index.index import Index
from mmssl.index.items import IndexItem
from mmssl.index.errors import IndexCorruptError, IndexNotFoundError
from mmssl.index.manifest import read_manifest


@dataclass
class Stage:
    """One step of a staged build: a label users see and the items it adds."""

    label: str
    items: list[IndexItem]


def stages_done(name: str, model_fingerprint: str, labels: list[str]) -> int:
    """How many of the stages ``labels`` the index ``name`` already holds, built with this model.

    0 when the index is missing or corrupt, was built with another model, or by another plan; an index built
    in one go (no stage fields: an older build) counts as complete.
    """
    try:
        manifest = read_manifest(name)
    except (IndexNotFoundError, IndexCorruptError):
        return 0
    if manifest.model_fingerprint != model_fingerprint:
        return 0
    source = manifest.source
    if "stages_done" not in source:
        return len(labels)
    if source.get("stages") != labels:
        return 0
    return int(source["stages_done"])


def build_stage(name: str, model, labels: list[str], stage: int, items: list[IndexItem], *, source: dict,
                on_progress: Callable[[int, int | None], None] | None = None, progress: bool = True,
                chunk_size: int = DEFAULT_CHUNK_SIZE, batch_size: int = DEFAULT_BATCH_SIZE) -> Index | None:
    """Build stage ``stage`` of the plan ``labels`` into ``indexes/NAME``: ``items`` are the items of
    stages ``0..stage`` in order. Returns the new index, or None when the index already holds it.
    Every stage but the last keeps its chunks for the next one."""
    if stages_done(name, model.fingerprint, labels) > stage:
        return None
    last = stage == len(labels) - 1
    return build_index(name, model, items, progress=progress, chunk_size=chunk_size, batch_size=batch_size,
                       keep_work=not last,
                       on_progress=on_progress, source={**source, "stage": labels[stage], "stages": labels,
                                                        "stages_done": stage + 1, "stages_total": len(labels),
                                                        "complete": last})


def build_staged(name: str, model, stages: list[Stage], *, source: dict,
                 on_stage: Callable[[int, Stage, Index], None] | None = None,
                 progress: bool = True, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Index | None:
    """Build ``indexes/NAME`` stage by stage (see the module docstring); returns the last index built
    (None when every stage was already in place). ``on_stage(i, stage, index)`` runs after stage ``i``
    is swapped in (reload it there)."""
    labels = [stage.label for stage in stages]
    prefix: list[IndexItem] = []
    index = None
    for i, stage in enumerate(stages):
        prefix = prefix + stage.items
        built = build_stage(name, model, labels, i, prefix, source=source, progress=progress, chunk_size=chunk_size)
        if built is not None:
            index = built
            if on_stage is not None:
                on_stage(i, stage, built)
    return index
