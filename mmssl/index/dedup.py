"""Near-duplicate collapse for image results: the same concept drawn by several artworks or icon sets, or in
several skin tones, is shown once, its other versions folded under it as "+N similar" (clip-retrieval).

Two ways to call two hits the same concept, both measured by ``bench/features.py``:

* ``"concept"`` (the default): the caption's concept key, :func:`concept_key` — the split key of the icon sets
  (:func:`mmssl.data.iconsets.concept_of`: lower case, punctuation and trailing numbers off) after the emoji
  skin-tone modifiers are dropped ("waving hand: medium skin tone" -> "waving hand"). Hits without a caption
  (a folder without captions.csv) are never merged.
* ``"cosine"``: the embeddings of the two items have cosine >= ``threshold`` (items, not the query: the same
  drawing in another palette is near, a different concept of the same style is not).

A hit joins the group of the first (best) earlier hit it matches; groups keep the order of their best hit,
so collapsing never reorders what the search ranked.

    groups = collapse(hits)                               # list[Collapsed]
    groups[0].hit, len(groups[0].similar)                 # the best hit, and how many it stands for
    page, more = collapsed_page(search, k=12)             # search(n) -> best n hits; fetched until 12 groups fill
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from mmssl.index.index import Hit

METHODS = ("concept", "cosine")
DEFAULT_METHOD = "concept"
COSINE_THRESHOLD = 0.9  # item-item cosine: one concept above it. Measured worse than the concept key (bench/features.py)
SKIN_TONE = re.compile(r"\b(?:(?:medium-)?(?:light|dark)|medium)\s+skin\s+tones?\b", re.IGNORECASE)


@dataclass
class Collapsed:
    """One shown result: the best ``hit`` of its concept and the lower-ranked ``similar`` ones folded under it."""

    hit: Hit
    similar: list[Hit] = field(default_factory=list)

    @property
    def hits(self) -> list[Hit]:
        """The shown hit first, then its similar ones, best first."""
        return [self.hit, *self.similar]


def concept_key(metadata: dict) -> str | None:
    """The concept of an image item's caption, skin tones dropped; None when it has no caption."""
    from mmssl.data.iconsets import concept_of

    caption = str(metadata.get("caption") or "").strip()
    if not caption:
        return None
    return concept_of(SKIN_TONE.sub(" ", caption)) or None


def by_concept(hits: list[Hit]) -> list[Collapsed]:
    """Hits of one :func:`concept_key` folded under the best of them."""
    groups: dict[object, Collapsed] = {}
    for hit in hits:
        key = concept_key(hit.metadata)
        key = ("id", hit.id) if key is None else key
        if key in groups:
            groups[key].similar.append(hit)
        else:
            groups[key] = Collapsed(hit)
    return list(groups.values())


def by_cosine(hits: list[Hit], vectors: np.ndarray, threshold: float = COSINE_THRESHOLD) -> list[Collapsed]:
    """Each hit folded under the first earlier shown hit whose item vector has cosine >= ``threshold`` with its
    own; ``vectors`` (N, D) unit rows, one per hit."""
    groups: list[Collapsed] = []
    shown: list[int] = []  # row of each group's shown hit in ``vectors``
    for row, hit in enumerate(hits):
        if shown:
            cosines = vectors[shown] @ vectors[row]  # (G,)
            best = int(np.argmax(cosines))
            if cosines[best] >= threshold:
                groups[best].similar.append(hit)
                continue
        groups.append(Collapsed(hit))
        shown.append(row)
    return groups


def collapse(hits: list[Hit], method: str = DEFAULT_METHOD, index=None,
             threshold: float = COSINE_THRESHOLD) -> list[Collapsed]:
    """``hits`` (best first) as groups of one concept each, in rank order; ``"cosine"`` needs the ``index``
    (its stored item vectors)."""
    if method not in METHODS:
        raise ValueError(f"near-duplicate method must be one of {', '.join(METHODS)}, not {method!r}")
    if method == "concept":
        return by_concept(hits)
    if index is None:
        raise ValueError("collapse(method='cosine') reads the items' vectors: pass the index")
    return by_cosine(hits, index.vectors([h.id for h in hits]), threshold)


def collapsed_page(search, k: int, offset: int = 0, method: str = DEFAULT_METHOD, index=None,
                   threshold: float = COSINE_THRESHOLD, max_fetch: int = 4096) -> tuple[list[Collapsed], bool]:
    """Groups ``offset .. offset + k`` of a ranking, and whether more groups follow.

    ``search(n)`` returns the best ``n`` hits. It is asked for a few times what the page needs, and again
    for twice as many while the groups do not fill the page and the ranking still has hits (``max_fetch``
    at most), so a page of 12 concepts is 12 concepts even when each comes in ten artworks. Later groups may
    still gain similar hits past the fetched depth: a group shows what was fetched, not every version.
    """
    wanted = offset + k
    fetch = min(max_fetch, 4 * wanted)
    while True:
        hits = search(fetch)
        groups = collapse(hits, method, index, threshold)
        exhausted = len(hits) < fetch
        if len(groups) > wanted or exhausted or fetch >= max_fetch:
            return groups[offset:wanted], len(groups) > wanted or not exhausted
        fetch = min(max_fetch, 2 * fetch)


def duplicate_share(hits: list[Hit], same) -> float:
    """Share of ``hits``' slots taken by a near-duplicate of an earlier slot, by ``same(a, b)`` (a ground truth)."""
    if not hits:
        return 0.0
    repeats = sum(any(same(earlier, hit) for earlier in hits[:i]) for i, hit in enumerate(hits))
    return repeats / len(hits)
