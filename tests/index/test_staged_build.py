"""Staged builds: each stage swaps in a searchable index of the items so far, the next stage embeds only
its new items, a rerun skips the stages in place, and an interrupted stage resumes from its chunks."""

from __future__ import annotations

import numpy as np
import pytest

from mmssl.index import load_index
from mmssl.index.build import work_folder
from mmssl.index.staged import Stage, build_stage, build_staged, stages_done
from tests.index.stub_model import StubModel, code_items

DIM = 16


def _stages():
    items = code_items(60)
    return [Stage("first", items[:25]), Stage("rest", items[25:])]


def test_each_stage_is_searchable_and_embeds_only_its_new_items(tmp_path):
    folder, model, seen = tmp_path / "code", StubModel("code", DIM), []

    def on_stage(i, stage, index):
        seen.append((i, stage.label, index.manifest.count, dict(index.manifest.source), len(model.encoded)))

    build_staged(str(folder), model, _stages(), source={"type": "test"}, on_stage=on_stage, chunk_size=10,
                 progress=False)
    (i0, label0, count0, source0, encoded0), (i1, label1, count1, source1, encoded1) = seen
    assert (i0, label0, count0, i1, label1, count1) == (0, "first", 25, 1, "rest", 60)
    assert source0 == {"type": "test", "stage": "first", "stages": ["first", "rest"], "stages_done": 1,
                       "stages_total": 2, "complete": False}
    assert source1["complete"] is True and source1["stages_done"] == 2
    # stage 0 embedded its 25; stage 1 reused chunks 0 and 1 (20 items) and embedded the other 40
    assert encoded0 == 25 and encoded1 - encoded0 == 40
    assert not work_folder(folder).exists()  # the last stage cleans up
    index = load_index(folder)
    assert sorted(r[0] for r in index.store.connection.execute("SELECT path FROM items"))  # metadata complete
    assert index.manifest.count == 60

    again = StubModel("code", DIM)
    assert build_staged(str(folder), again, _stages(), source={"type": "test"}, progress=False) is None
    assert again.encoded == []  # every stage in place: nothing embedded
    assert stages_done(str(folder), "sha256:another", ["first", "rest"]) == 0  # another model starts over


def test_a_search_between_stages_sees_only_the_first_stage(tmp_path):
    folder, model = tmp_path / "code", StubModel("code", DIM)
    stages = _stages()
    labels = [s.label for s in stages]
    first = build_stage(str(folder), model, labels, 0, stages[0].items, source={}, progress=False)
    hits = first.search(np.ones(DIM, dtype=np.float32), k=100)[0]
    assert {h.metadata["func_name"] for h in hits} == {f"f{i}" for i in range(25)}
    assert stages_done(str(folder), model.fingerprint, labels) == 1


def test_progress_counts_reused_and_embedded_items_without_a_bar(tmp_path):
    folder, stages = tmp_path / "code", _stages()
    labels = [s.label for s in stages]
    build_stage(str(folder), StubModel("code", DIM), labels, 0, stages[0].items, source={}, chunk_size=10,
                progress=False)
    seen = []
    build_stage(str(folder), StubModel("code", DIM), labels, 1, stages[0].items + stages[1].items, source={},
                chunk_size=10, batch_size=5, progress=False, on_progress=lambda done, total: seen.append((done, total)))
    assert seen[:2] == [(10, 60), (20, 60)]  # chunks 0 and 1 reused at once
    assert seen[-1] == (60, 60) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_an_interrupted_stage_resumes_from_its_chunks(tmp_path):
    folder = tmp_path / "code"
    stages = _stages()
    labels = [s.label for s in stages]
    build_stage(str(folder), StubModel("code", DIM), labels, 0, stages[0].items, source={}, chunk_size=10,
                progress=False)
    crashing = StubModel("code", DIM, fail_after_batches=3)  # batch size 5: one new chunk of stage 1, then Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        build_stage(str(folder), crashing, labels, 1, stages[0].items + stages[1].items, source={}, chunk_size=10,
                    batch_size=5, progress=False)
    assert load_index(folder).manifest.count == 25  # stage 0 still served
    resumed = StubModel("code", DIM)
    build_stage(str(folder), resumed, labels, 1, stages[0].items + stages[1].items, source={}, chunk_size=10,
                batch_size=5, progress=False)
    # chunks 0, 1 (stage 0) and the chunk 2 written before the crash (items 20..29) are reused
    assert len(resumed.encoded) == 30
    assert load_index(folder).manifest.count == 60
