"""Near-duplicate collapse (mmssl.index.dedup): concept keys of real emoji and icon names, groups in rank
order, cosine folding, and pages that fill up with concepts however many versions each has."""

from __future__ import annotations

import numpy as np
import pytest

from mmssl.index import Hit
from mmssl.index.dedup import by_concept, by_cosine, collapse, collapsed_page, concept_key, duplicate_share


def _hit(i: int, caption: str, score: float | None = None) -> Hit:
    return Hit(i, 1.0 - i / 100 if score is None else score, {"caption": caption, "path": f"/x/{i}.png"})


@pytest.mark.parametrize("caption, key", [
    ("waving hand: medium-light skin tone", "waving hand"), ("waving hand", "waving hand"),
    ("man: medium-dark skin tone, white hair", "man white hair"),
    ("kiss: woman, man, light skin tone, dark skin tone", "kiss woman man"),
    ("Arrow-Right-2", "arrow right"), ("battery 100", "battery"), ("lock2", "lock"),
    ("dark sunglasses", "dark sunglasses"),  # "dark" alone is no skin tone
])
def test_concept_key_drops_skin_tones_case_and_numbers(caption, key):
    assert concept_key({"caption": caption}) == key


def test_no_caption_is_never_merged():
    hits = [Hit(1, 0.9, {"path": "/a.png"}), Hit(2, 0.8, {"path": "/b.png", "caption": ""})]
    assert concept_key(hits[0].metadata) is None
    assert [g.hit.id for g in by_concept(hits)] == [1, 2]


def test_groups_keep_rank_order_and_fold_later_versions():
    hits = [_hit(0, "red heart"), _hit(1, "thumbs up: dark skin tone"), _hit(2, "Red Heart"),
            _hit(3, "thumbs up"), _hit(4, "fire"), _hit(5, "thumbs up: light skin tone")]
    groups = by_concept(hits)
    assert [g.hit.id for g in groups] == [0, 1, 4]
    assert [[h.id for h in g.similar] for g in groups] == [[2], [3, 5], []]
    assert [h.id for h in groups[1].hits] == [1, 3, 5]
    assert duplicate_share(hits, lambda a, b: concept_key(a.metadata) == concept_key(b.metadata)) == pytest.approx(3 / 6)
    assert duplicate_share([g.hit for g in groups], lambda a, b: concept_key(a.metadata) == concept_key(b.metadata)) == 0


def test_cosine_folds_into_the_nearest_shown_hit_above_the_threshold():
    vectors = np.asarray([[1, 0, 0], [0.96, 0.28, 0], [0, 1, 0], [0.6, 0.8, 0], [0.28, 0.96, 0]], np.float32)  # unit rows
    hits = [_hit(i, f"item {i}") for i in range(5)]
    groups = by_cosine(hits, vectors, threshold=0.95)
    # 1 is 0.96 from 0; 3 is 0.6 from 0 and 0.8 from 2: shown; 4 is 0.96 from 2 and 0.94 from 3: folded into 2
    assert [g.hit.id for g in groups] == [0, 2, 3] and [[h.id for h in g.similar] for g in groups] == [[1], [4], []]
    with pytest.raises(ValueError, match="pass the index"):
        collapse(hits, "cosine")
    with pytest.raises(ValueError, match="concept, cosine"):
        collapse(hits, "colour")


def test_a_page_fetches_deeper_until_it_holds_k_concepts():
    ranking = [_hit(i, f"thing {'abcdefghijklmnopqrstuvwxyz'[i % 20]}") for i in range(200)]  # 20 concepts x 10
    asked = []

    def search(count):
        asked.append(count)
        return ranking[:count]

    groups, more = collapsed_page(search, k=12)
    assert len(groups) == 12 and more and asked == [48]  # 48 hits already hold the 20 concepts
    assert all(len(g.similar) >= 1 for g in groups)
    asked.clear()
    page, more = collapsed_page(search, k=12, offset=12)
    assert [g.hit.id for g in page] == list(range(12, 20)) and not more  # only 20 concepts: 8 on the last page
    assert asked == [96, 192, 384]  # deeper each time, until the ranking ran out

    many = [_hit(i, f"thing {'abcdefghij'[i // 40]}") for i in range(400)]  # each concept 40 times in a row
    groups, more = collapsed_page(lambda count: many[:count], k=3, max_fetch=64)
    assert [g.hit.id for g in groups] == [0, 40] and more  # the depth cap: 2 concepts found, the ranking goes on
