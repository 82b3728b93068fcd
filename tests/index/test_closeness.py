"""The "nothing close" threshold's arithmetic (mmssl.index.closeness) on hand-made numbers."""

from __future__ import annotations

import numpy as np
import pytest

from mmssl.index.closeness import Closeness, choose_threshold, shares, words


def test_the_threshold_keeps_the_goal_share_of_the_present_successes():
    present = np.arange(1, 101, dtype=float)  # values 1..100, every query found its item
    threshold = choose_threshold(present, np.ones(100, bool), kept_goal=0.95)
    assert threshold == 6.0  # values 1..5 are flagged: 95 of 100 kept
    row = shares(threshold, absent_values=[0.5, 3, 5.9, 6, 50], present_values=present, present_found=np.ones(100, bool))
    assert row == {"absent_flagged": 0.6, "present_kept": 0.95, "present_recall": 1.0}
    found = present % 2 == 0  # only the even ones found their item: 50 successes, 2 may be lost
    assert choose_threshold(present, found, 0.95) == 6.0 and choose_threshold(present, found, 1.0) == 2.0
    with pytest.raises(ValueError, match="no present query found its item"):
        choose_threshold(present, np.zeros(100, bool))


def test_the_statistic_corrects_for_the_query_mean_and_the_hub():
    closeness = Closeness(0.1, a=1.0, b=0.5, mean=np.asarray([0.2, 0.0]), hub={7: 0.4, 8: 0.0})
    queries = np.asarray([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(closeness.values(queries, [0.5, 0.5], [7, 8]), [0.5 - 0.2 - 0.2, 0.5])
    assert closeness.is_nothing_close(queries[0], 0.5, 7) and not closeness.is_nothing_close(queries[1], 0.5, 8)
    np.testing.assert_allclose(closeness.values(queries, [0.5, 0.5], [7, 8], a=0, b=0), [0.5, 0.5])  # flat cut-off


def test_content_words():
    assert words("A Red Car on the Roads") == {"red", "car", "road"}
    assert words("flag: St. Pierre & Miquelon") == {"flag", "pierre", "miquelon"}
    assert words("12 o’clock") == {"clock"}


def test_query_statistics_match_a_brute_force_over_the_stored_vectors(tmp_path):
    from mmssl.index import build_index
    from mmssl.index.closeness import query_statistics
    from mmssl.index.faiss_index import stored_vectors
    from tests.index.stub_model import StubModel, code_items

    index = build_index(tmp_path / "idx", StubModel("code", 16), code_items(150), progress=False)
    _, vectors = stored_vectors(index.faiss_index)  # (150, 16): fewer than the sample, so the sample is all
    queries = np.concatenate([vectors[:3], np.random.default_rng(1).standard_normal((3, 16))]).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    scores = np.sort(queries @ vectors.T, axis=1)[:, ::-1]  # (6, 150) best first
    got = query_statistics(index, queries)
    top = scores[:, :100]
    np.testing.assert_allclose(got["top1"], scores[:, 0], atol=1e-5)
    np.testing.assert_allclose(got["top1_z_typical"], (scores[:, 0] - scores.mean(1)) / scores.std(1), atol=1e-4)
    np.testing.assert_allclose(got["top1_z_topk"], (top[:, 0] - top.mean(1)) / top.std(1), atol=1e-4)
    np.testing.assert_allclose(got["margin_top10"], scores[:, 0] - scores[:, 9], atol=1e-5)
    assert got["top1"][:3] == pytest.approx(1.0, abs=1e-5)  # a stored item's own vector finds itself
    assert got["top1_z_typical"][:3].min() > got["top1_z_typical"][3:].max()  # and stands out from the rest
