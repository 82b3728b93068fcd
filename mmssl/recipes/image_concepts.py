"""The concept and style of an image record, and the train records whose concept is held out elsewhere.

Each image corpus splits by its own concept key (base emoji, icon name, game-icon name), so one concept
can sit in train in one corpus and in test in another: the emoji "package" is held out while the icon
sets' "package" icons are in train. Nothing is re-rendered or re-split on disk: the training recipes
drop every train record whose shared concept key (:func:`concept_key`, the icon sets' normalised name
of its caption) is held out (``concept_split`` valid or test, the unseen split included) in *any* image
corpus of the run, and record how many they dropped.
"""

from __future__ import annotations

from mmssl.data.corpus import CorpusNotBuiltError, load_corpus, split_records
from mmssl.data.iconsets import concept_of
from mmssl.data.splits import UNSEEN_SPLIT
from mmssl.eval.evaluate import held_out_concepts

HELD_OUT_SPLITS = ("valid", "test", UNSEEN_SPLIT)


def concept_key(record: dict) -> str:
    """The concept every image corpus shares: the normalised name (``"Package"`` -> ``"package"``); an
    unnamed image is a concept of its own."""
    text = record.get("text")
    return concept_of(text) if text else f"image:{record['image']}"


def style_key(record: dict) -> str:
    """The drawing style of an image: its emoji artwork or icon set, else its corpus (one style each)."""
    style = record.get("artwork") or record.get("icon_set")
    return f"{record['source']}:{style}" if style else record["source"]


def corpus_records(corpora: list[str], split: str = "train", limit: int | None = None) -> list[dict]:
    """The records of one split of every corpus, at most ``limit`` per corpus (image paths absolute)."""
    return [r for name in corpora for r in split_records(name, split, limit)]


def held_out_concept_keys(corpora: list[str]) -> set[str]:
    """The concept keys held out (valid, test, or unseen with a held-out concept) in any of ``corpora``."""
    keys: set[str] = set()
    for name in corpora:
        for split in HELD_OUT_SPLITS:
            try:
                records = load_corpus(name, split).to_list()
            except CorpusNotBuiltError:
                continue  # the small corpora have no unseen split
            keys |= {concept_key(r) for r in held_out_concepts(records)}
    return keys


def drop_held_out_concepts(records: list[dict], corpora: list[str]) -> tuple[list[dict], int]:
    """``(kept, dropped)``: the train ``records`` whose concept is held out in no corpus of ``corpora``."""
    held_out = held_out_concept_keys(corpora)
    kept = [r for r in records if concept_key(r) not in held_out]
    dropped = len(records) - len(kept)
    print(f"[mmssl] dropped {dropped} of {len(records)} train images whose concept is held out in another "
          f"corpus of {', '.join(corpora)}")
    return kept, dropped
