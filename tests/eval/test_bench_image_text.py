"""bench/image_text.py's bookkeeping: a long arm is stopped by seconds in each stage with the corpus shares
in both, and the table reads the long runs (one seed each, their own numbers) beside the 3-seed short ones."""

import json
from pathlib import Path

import pytest
from script_module import load_script

@pytest.fixture(scope="module")
def bench():
    return load_script("bench/image_text.py", "bench_image_text_under_test")


def _args(bench, runs_dir: Path, *extra: str):
    return bench.parse_args(["--runs-dir", str(runs_dir), *extra])


def test_a_long_arm_splits_its_seconds_between_the_stages(bench, tmp_path):
    args = _args(bench, tmp_path, "--time-budget", "--budget-s", "1800", "--pretrain-share", "0.25",
                 "--source-shares", "emoji=0.16,clipart=0.12")
    scratch, pretrained = bench.arm_run("scratch", 0, args), bench.arm_run("pretrained", 0, args)
    assert scratch.train.max_seconds == 1800 and scratch.pretrain.steps == 0
    assert pretrained.train.max_seconds == 1350 and pretrained.pretrain.max_seconds == 450
    for run in (scratch, pretrained):  # steps are only a cap; warm-up as the old release; resumable
        assert run.train.max_steps == bench.MAX_STEPS and run.train.warmup_steps == 100 and run.train.resume
        assert run.train.source_shares == ["emoji=0.16", "clipart=0.12"] and run.train.batch_size == 128
    assert pretrained.pretrain.steps == bench.MAX_STEPS and pretrained.pretrain.run_dir.endswith("pretrained-s0/pretrain")
    short = bench.arm_run("pretrained", 0, _args(bench, tmp_path))  # without --time-budget: steps from the rates
    assert short.train.max_seconds == 0 and short.train.max_steps == round((420 - 150) * 0.8)


def _record(arm: str, seed: int, unseen_r10: float, seconds: float) -> dict:
    rows = {"emoji": {"recall@1": 0.1, "recall@5": 0.3, "recall@10": 0.5},
            "unseen-style": {"recall@1": 0.02, "recall@5": 0.1, "recall@10": unseen_r10}}
    return {"arm": arm, "seed": seed, "optimisation_seconds": seconds, "rows": rows, "pretrain_steps": 0,
            "dual_steps": 10, "valid": {"emoji": {"recall@10": 0.4}}}


def test_the_table_shows_the_long_runs_beside_the_short_ones(bench, tmp_path, capsys):
    short, long = tmp_path / "short", tmp_path / "long"
    short.mkdir(), long.mkdir()
    for seed, value in enumerate((0.10, 0.12, 0.14)):
        (short / f"scratch-s{seed}.json").write_text(json.dumps(_record("scratch", seed, value, 360.0)))
    (long / "pretrained-s0.json").write_text(json.dumps(_record("pretrained", 0, 0.25, 1860.0)))
    (long / "scratch-s0.json").write_text(json.dumps(_record("scratch", 0, 0.21, 1855.0)))
    output = tmp_path / "table.json"
    assert bench.main(["--runs-dir", str(short), "--long-runs-dir", str(long), "--old", str(tmp_path / "none"),
                       "--new", str(tmp_path / "none"), "--output", str(output)]) == 0
    table = json.loads(output.read_text())
    models = table["models"]
    assert list(models) == ["scratch (mean±sd, 3 seeds)", "scratch (long, seed 0, 31 min)",
                            "pretrained (long, seed 0, 31 min)"]
    assert models["scratch (mean±sd, 3 seeds)"]["unseen-style"]["recall@10"] == pytest.approx([0.12, 0.02])
    assert models["pretrained (long, seed 0, 31 min)"]["unseen-style"]["recall@10"] == 0.25
    assert [r["arm"] for r in table["equal_compute_long"]["runs"]] == ["pretrained", "scratch"]
    printed = capsys.readouterr().out
    assert "pretrained (long, seed 0, 31 min) unseen-style 0.020 0.100 0.250" in [" ".join(line.split())
                                                                                 for line in printed.splitlines()]
