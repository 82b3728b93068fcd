"""bench/pretext.py's bookkeeping: results of several invocations merge by method, and a scratch
downstream run is computed once per (tower, task, budget) and reused from disk."""

import argparse
import json
from pathlib import Path

import pytest
from script_module import load_script

@pytest.fixture(scope="module")
def bench():
    return load_script("bench/pretext.py", "bench_pretext_under_test")


def _invocation(bench, monkeypatch, output: Path, run_id: str, steps: int, values: dict[str, float]) -> None:
    monkeypatch.setattr(bench, "_RUN_ID", run_id)
    args = argparse.Namespace(output=str(output), steps=steps, methods=",".join(values))
    rows = []
    for method, value in values.items():  # written after each method, as the bench does
        rows.append({"method": method, "probe": {"pretrained": {"knn": value}}})
        bench._write(args, rows, started=0.0)


def test_invocations_merge_by_method_and_keep_their_settings(bench, monkeypatch, tmp_path):
    out = tmp_path / "pretext.json"
    # a file from before rows named their invocation: one run, one row
    out.write_text(json.dumps({"runs": [{"methods": ["rotation"], "steps": 100}],
                               "rows": [{"method": "rotation", "probe": {"pretrained": {"knn": 0.5}}}]}))
    _invocation(bench, monkeypatch, out, "A", 7, {"vqvae": 0.1, "jigsaw": 0.2})
    data = json.loads(out.read_text())
    assert [r["method"] for r in data["rows"]] == ["rotation", "jigsaw", "vqvae"]  # METHODS order
    assert {r["method"]: r["run"] for r in data["rows"]} == {"rotation": "earlier run 1", "vqvae": "A", "jigsaw": "A"}
    assert [(s["id"], s["steps"], s["methods"]) for s in data["runs"]] == [
        ("earlier run 1", 100, ["rotation"]), ("A", 7, ["jigsaw", "vqvae"])]

    _invocation(bench, monkeypatch, out, "B", 9, {"jigsaw": 0.3})  # a rerun replaces jigsaw's row only
    data = json.loads(out.read_text())
    knn = {r["method"]: (r["run"], r["probe"]["pretrained"]["knn"]) for r in data["rows"]}
    assert knn == {"rotation": ("earlier run 1", 0.5), "vqvae": ("A", 0.1), "jigsaw": ("B", 0.3)}
    assert [s["id"] for s in data["runs"]] == ["earlier run 1", "A", "B"]

    _invocation(bench, monkeypatch, out, "C", 11, {"rotation": 0.6})  # no row names the earlier run any more
    data = json.loads(out.read_text())
    assert [s["id"] for s in data["runs"]] == ["A", "B", "C"]
    assert len(data["rows"]) == 3 and not list(tmp_path.glob(".*.tmp"))


def test_scratch_downstream_runs_once_per_tower_and_budget(bench, monkeypatch, tmp_path):
    from mmssl.encoders.tower import TowerConfig
    from mmssl.train.config import TrainConfig

    calls = []

    def fake_downstream(item, kind, budget, output, **kwargs):
        calls.append((item.name, item.pretrained, budget.max_steps, Path(output)))
        return {"metric": "R@10", "value": 0.1 * len(calls)}

    monkeypatch.setattr(bench, "downstream_retrieval", fake_downstream)
    tower = TowerConfig(name="resnet-tiny-64", pretrained="runs/rotation")
    first = bench._scratch_downstream(tower, "image-text", TrainConfig(max_steps=100), tmp_path)
    again = bench._scratch_downstream(TowerConfig(name="resnet-tiny-64", pretrained="runs/jigsaw"), "image-text",
                                      TrainConfig(max_steps=100), tmp_path)
    other = bench._scratch_downstream(tower, "image-text", TrainConfig(max_steps=50), tmp_path)
    assert first == again == {"metric": "R@10", "value": 0.1} and other["value"] == pytest.approx(0.2)
    assert [c[:3] for c in calls] == [("resnet-tiny-64", "scratch", 100), ("resnet-tiny-64", "scratch", 50)]
    assert calls[0][3] != calls[1][3] and (calls[0][3] / "result.json").is_file()
