"""The Trainer under a real ``torchrun`` (2 gloo processes) equals 1 process on the concatenated batch.

One launch (tests/train/torchrun_worker.py) takes one step in each mode — global negatives through
DDP, open_clip's local loss through DDP, global negatives with GradCache — and leaves a 4-step
2-process run that is then resumed here on 1 process. (The loss-level 2-process check with
hand-made towers is tests/losses/test_loss_distributed.py.)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmssl.train.sampler import ResumableSampler
from mmssl.train.trainer import resume_start

sys.path.insert(0, str(Path(__file__).parent))
from torchrun_worker import LOCAL_BATCH, MODES, first_step_gradients, make_trainer, write_tokenizer  # noqa: E402

WORKER = Path(__file__).parent / "torchrun_worker.py"
WORLD = 2


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("torchrun")
    tokenizer = write_tokenizer(out / "tokenizer.json")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD),
                           str(WORKER), str(out), str(tokenizer)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, tokenizer, [torch.load(out / f"grads_rank{r}.pt") for r in range(WORLD)]


def first_loss(run_dir: Path) -> float:
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["loss"]


@pytest.mark.parametrize("mode", list(MODES))
def test_two_processes_equal_one_process_on_the_concatenated_batch(two_ranks, tmp_path, mode):
    out, tokenizer, ranks = two_ranks
    assert all(r["world_size"] == WORLD for r in ranks)
    single = make_trainer(str(tmp_path / "single"), WORLD * LOCAL_BATCH, tokenizer)  # plain path, whole global batch
    want = first_step_gradients(single)
    assert want.keys() == {name for name, p in single.method.named_parameters() if p.requires_grad}
    for rank in ranks:  # after the all-reduce every rank holds the one-process gradients
        assert rank[mode].keys() == want.keys()
        for name in want:
            torch.testing.assert_close(rank[mode][name], want[name], rtol=1e-6, atol=1e-12, msg=f"{mode} {name}")
    if mode != "local":  # rank 0 logs the global-batch loss (local loss: its own share)
        assert first_loss(out / mode) == pytest.approx(first_loss(tmp_path / "single"), rel=1e-6)


def test_rank_zero_goes_first_and_broadcasts(two_ranks):
    out, _, ranks = two_ranks
    assert (out / "order.txt").read_text().split() == ["0", "1"]
    assert [r["broadcast"] for r in ranks] == [{"from rank": 0}] * WORLD


def test_resume_a_two_process_run_on_one_process(two_ranks, tmp_path, capsys):
    out, tokenizer, _ = two_ranks
    rows = [json.loads(line) for line in (out / "resume" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    trainer = make_trainer(str(out / "resume"), LOCAL_BATCH, tokenizer, max_steps=6, checkpoint_every=2, resume=True)
    trainer.fit()
    assert "resuming a run of 2 process(es) on 1" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "resume" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6] and trainer.step == 6
    # 4 steps x 8 samples x 2 ranks = the first 64 positions of epoch 0; one process continues at 64
    assert trainer._start == 64


@pytest.mark.parametrize("old_world,new_world", [(2, 1), (1, 2), (2, 3), (3, 2), (1, 1)])
def test_resume_start_continues_the_epoch_order_on_any_world_size(old_world, new_world):
    n, per_step, steps = 50, 4, 3  # 3 steps of 4 samples per rank
    def taken(world, start, count):
        return [[i for _, i in zip(range(count), iter_indices(world, rank, start))] for rank in range(world)]

    def iter_indices(world, rank, start):
        return (i for _, i in ResumableSampler(n, seed=7, start=start, rank=rank, world_size=world))

    before = {i for rank in taken(old_world, 0, steps * per_step) for i in rank}
    start = resume_start(steps, n, per_step, old_world, new_world)
    after = [i for rank in taken(new_world, start, 2) for i in rank]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(7)).tolist()
    position = steps * per_step * old_world
    assert before == set(order[:position])  # the old ranks took the epoch's first positions
    # the new ranks take the next ones (rounded down to a multiple of new_world)
    resumed_at = position - position % new_world
    assert sorted(after) == sorted(order[resumed_at:resumed_at + 2 * new_world])
    if old_world == new_world:
        assert start == steps * per_step
