import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmssl.checkpoint import CheckpointError, latest_checkpoint
from mmssl.train.trainer import cosine_with_warmup

sys.path.insert(0, str(Path(__file__).parent))
from tiny_run import make_trainer  # noqa: E402

TINY = Path(__file__).parent / "tiny_run.py"


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(latest_checkpoint(Path(run_dir) / "checkpoints") / "model.safetensors"))


def test_loss_falls_and_run_folder_is_complete(tmp_path):
    trainer = make_trainer(str(tmp_path / "run"), max_steps=40)
    trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 41))
    first, last = sum(r["loss"] for r in rows[:5]) / 5, sum(r["loss"] for r in rows[-5:]) / 5
    assert first > 5.0  # ~ln(256) = 5.55 at init
    assert last < first - 1.5, (first, last)
    for name in ("config.json", "metrics.csv", "curves.png", "checkpoints/latest"):
        assert (tmp_path / "run" / name).exists(), name
    assert json.loads((tmp_path / "run" / "config.json").read_text())["max_steps"] == 40
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"step", "loss", "lr", "accuracy", "grad_norm", "samples_per_s"} <= set(header)
    # keep_checkpoints=2: only the two newest step folders remain
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*")) == ["step_0000035", "step_0000040"]


def test_resume_in_process_matches_uninterrupted(tmp_path):
    make_trainer(str(tmp_path / "full"), max_steps=20).fit()
    # interrupt a 20-step run right after its step-10 checkpoint, then resume it
    part = make_trainer(str(tmp_path / "part"), max_steps=20)
    part.config.checkpoint_every = 10
    original_step = part.optimizer.step
    calls = {"n": 0}

    def stop_after_ten(*a, **k):
        calls["n"] += 1
        if calls["n"] > 10:
            raise KeyboardInterrupt
        return original_step(*a, **k)

    part.optimizer.step = stop_after_ten
    with pytest.warns(UserWarning, match="overridden"), pytest.raises(KeyboardInterrupt):
        part.fit()
    assert latest_checkpoint(tmp_path / "part" / "checkpoints").name == "step_0000010"
    resumed_trainer = make_trainer(str(tmp_path / "part"), max_steps=20, resume=True)
    resumed_trainer.fit()
    # the run's statistics count only the steps this call ran, not the resumed ones
    stats = resumed_trainer.fit_stats
    assert stats.steps == 10 and stats.samples == 10 * resumed_trainer.global_batch_size and stats.seconds > 0
    full, resumed = final_weights(tmp_path / "full"), final_weights(tmp_path / "part")
    assert full.keys() == resumed.keys()
    for k in full:
        assert torch.equal(full[k], resumed[k]), k


def test_kill_9_then_resume_ends_at_the_same_weights(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    subprocess.run([sys.executable, str(TINY), str(tmp_path / "ref"), "25"], check=True, env=env,
                   capture_output=True, timeout=120)
    proc = subprocess.Popen([sys.executable, str(TINY), str(tmp_path / "killed"), "25", "--", "0.05"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    latest = tmp_path / "killed" / "checkpoints" / "latest"
    while time.time() < deadline and not (latest.exists() and latest.read_text().strip() == "step_0000010"):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # mid-run: after step 10's checkpoint, before the end
    proc.wait()
    assert latest_checkpoint(tmp_path / "killed" / "checkpoints").name in ("step_0000010", "step_0000015")
    out = subprocess.run([sys.executable, str(TINY), str(tmp_path / "killed"), "25", "--resume"], check=True,
                         env=env, capture_output=True, text=True, timeout=120)
    assert "resumed from" in out.stdout
    ref, resumed = final_weights(tmp_path / "ref"), final_weights(tmp_path / "killed")
    for k in ref:
        assert torch.equal(ref[k], resumed[k]), k
    steps = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 26))  # rows the killed run logged past its checkpoint were replaced


def test_grad_accumulation_matches_one_big_batch(tmp_path):
    torch.manual_seed(0)
    big = make_trainer(str(tmp_path / "big"), max_steps=1, batch_size=16, grad_accum=1, grad_clip=0.0)
    small = make_trainer(str(tmp_path / "small"), max_steps=1, batch_size=8, grad_accum=2, grad_clip=0.0)
    for t in (big, small):
        t.method.encoder[2].p = 0.0  # dropout draws differ with batch shape; the rest must match
        t.fit()
    a, b = final_weights(tmp_path / "big"), final_weights(tmp_path / "small")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_resume_rejects_a_checkpoint_of_another_kind(tmp_path):
    make_trainer(str(tmp_path / "run"), max_steps=5).fit()
    other = make_trainer(str(tmp_path / "run"), max_steps=10, resume=True)
    other.kind = "clip"
    with pytest.raises(CheckpointError, match="tiny-next-byte"):
        other.fit()


def test_cosine_schedule_shape():
    values = [cosine_with_warmup(s, warmup=10, total=110, min_ratio=0.1) for s in range(111)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[60] == pytest.approx(0.1 + 0.9 * 0.5)
    assert values[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[9:], values[10:]))


def test_groups_per_batch_draws_each_batch_from_few_of_the_datasets_groups(tmp_path):
    from itertools import islice

    from mmssl.train.sampler import GroupedSampler, ResumableSampler

    trainer = make_trainer(str(tmp_path / "plain"), max_steps=1)
    assert type(trainer._loader().sampler) is ResumableSampler
    with pytest.raises(ValueError, match="groups"):
        make_trainer(str(tmp_path / "none"), max_steps=1, groups_per_batch=2)._loader()
    trainer = make_trainer(str(tmp_path / "grouped"), max_steps=1, groups_per_batch=2)
    groups = [f"module{i % 16}" for i in range(len(trainer.dataset))]  # 16 groups of 16
    trainer.dataset.groups = groups
    sampler = trainer._loader().sampler
    assert isinstance(sampler, GroupedSampler)
    indices = [i for _, i in islice(iter(sampler), 16 * 16)]  # one epoch, batches of 16
    assert sorted(indices) == list(range(256))
    spans = [len({groups[i] for i in indices[start:start + 16]}) for start in range(0, 256, 16)]
    assert max(spans) <= 2  # 2 chunks of 8, one group each (both may be the same group's)
    uniform = [i for _, i in islice(iter(make_trainer(str(tmp_path / "u"), max_steps=1)._loader().sampler), 256)]
    assert min(len({groups[i] for i in uniform[s:s + 16]}) for s in range(0, 256, 16)) > 4
    trainer.fit()  # and it trains
    assert trainer.step == 1


class StepClock:
    """A stand-in for the trainer's ``time`` module: one second passes per optimizer step, nothing else."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def tick(self, trainer) -> None:  # as method.on_step_start
        self.now += 1.0


def test_max_seconds_stops_the_run_and_the_cosine_follows_the_clock(tmp_path, monkeypatch):
    clock = StepClock()
    monkeypatch.setattr("mmssl.train.trainer.time", clock)
    trainer = make_trainer(str(tmp_path / "run"), max_steps=1000, max_seconds=10.0, checkpoint_every=4)
    trainer.method.on_step_start = clock.tick
    trainer.fit()
    assert trainer.step == 10 and trainer.train_seconds == 10.0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    lrs = {r["step"]: r["lr"] for r in rows}
    # warm-up 3 steps, then the cosine by time: after step 6 (6 s of 10) it is at 0.6, not at 3/997 of the steps
    assert lrs[6] == pytest.approx(3e-3 * 0.5 * (1 + math.cos(math.pi * 0.6)))
    assert lrs[10] == pytest.approx(0.0, abs=1e-12)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["max_seconds"] == 10.0
    assert latest_checkpoint(tmp_path / "run" / "checkpoints").name == "step_0000010"  # saved when time ran out
    # a resumed run keeps the clock: with the same budget nothing is left; with 5 s more it runs 5 more steps
    again = make_trainer(str(tmp_path / "run"), max_steps=1000, resume=True, max_seconds=10.0)
    again.fit()
    assert again.step == 10 and again.fit_stats.steps == 0
    longer = make_trainer(str(tmp_path / "run"), max_steps=1000, resume=True, max_seconds=15.0)
    longer.method.on_step_start = clock.tick
    longer.fit()
    assert (longer.step, longer.fit_stats.steps, longer.train_seconds) == (15, 5, 15.0)
    with pytest.raises(ValueError, match="max_seconds"):
        make_trainer(str(tmp_path / "bad"), max_steps=5, max_seconds=-1.0)


class CpuClock(StepClock):
    """Wall time races ahead (another job holds the core); this process gets one CPU second per step."""

    def perf_counter(self) -> float:
        return 10.0 * self.now

    def process_time(self) -> float:
        return self.now


def test_a_cpu_budget_counts_the_process_cpu_seconds_not_the_wall_clock(tmp_path, monkeypatch):
    clock = CpuClock()
    monkeypatch.setattr("mmssl.train.trainer.time", clock)
    cpu = make_trainer(str(tmp_path / "cpu"), max_steps=1000, max_seconds=10.0, budget_clock="cpu")
    cpu.method.on_step_start = clock.tick
    cpu.fit()
    assert cpu.step == 10 and cpu.train_seconds == 10.0
    wall = make_trainer(str(tmp_path / "wall"), max_steps=1000, max_seconds=10.0)  # 10 wall s per step here
    wall.method.on_step_start = clock.tick
    wall.fit()
    assert wall.step == 1
    with pytest.raises(ValueError, match="budget_clock"):
        make_trainer(str(tmp_path / "bad"), max_steps=5, budget_clock="gpu")


def test_source_shares_batch_the_datasets_sources_in_those_shares(tmp_path):
    from itertools import islice

    from mmssl.train.sampler import SourceShareSampler

    with pytest.raises(ValueError, match="sources"):
        make_trainer(str(tmp_path / "none"), max_steps=1, source_shares=["small=0.5"])._loader()
    trainer = make_trainer(str(tmp_path / "shared"), max_steps=1, source_shares=["small=0.5"])
    trainer.dataset.sources = ["small"] * 16 + ["large"] * 240  # 1/16 of the samples
    sampler = trainer._loader().sampler
    assert isinstance(sampler, SourceShareSampler)
    names = [trainer.dataset.sources[i] for _, i in islice(iter(sampler), 256)]
    assert names.count("small") == 128
    with pytest.raises(ValueError, match="cannot be combined"):
        make_trainer(str(tmp_path / "both"), max_steps=1, source_shares=["small=0.5"], groups_per_batch=2)._loader()
