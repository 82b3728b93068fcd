"""Run by ``torchrun`` in tests/train/test_torchrun.py: the Trainer on a tiny real code dual encoder.

    torchrun --standalone --nproc_per_node 2 torchrun_worker.py OUT_DIR TOKENIZER_JSON

For each mode (global negatives through DDP, open_clip's local loss through DDP, global negatives
with GradCache in chunks of B/4) one optimizer step is taken and the parameter gradients the
optimizer receives (after the all-reduce) are saved per rank in ``OUT_DIR/grads_rank{R}.pt``; the
step's loss is in ``OUT_DIR/<mode>/metrics.jsonl`` (rank 0). Then a 4-step run with checkpoints
is left in ``OUT_DIR/resume`` for the resume-on-another-world-size test. Each rank also records
what :func:`broadcast_object` gave it and appends its rank to ``OUT_DIR/order.txt`` inside
:func:`main_process_first` (rank 0 sleeping there first, so without the barriers rank 1 would write first).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1]))
from tiny_models import stdlib_pairs  # noqa: E402

from mmssl.data.pairs import CodePairs, PairCollator  # noqa: E402
from mmssl.distributed import broadcast_object, main_process_first, world_info  # noqa: E402
from mmssl.encoders import (DualEncoderConfig, TowerConfig, build_dual_encoder, load_code_tokenizer,  # noqa: E402
                            save_code_tokenizer, train_code_tokenizer)
from mmssl.train.config import TrainConfig  # noqa: E402
from mmssl.train.trainer import Trainer, seed_everything  # noqa: E402

LOCAL_BATCH = 8
MODES = {"global": dict(), "local": dict(local_loss=True), "gradcache": dict(grad_cache_chunk=LOCAL_BATCH // 4)}


def write_tokenizer(path: Path) -> Path:
    """Train the vocabulary once: WordPiece training is not reproducible across processes."""
    save_code_tokenizer(train_code_tokenizer([text for pair in stdlib_pairs(limit=96) for text in pair],
                                             vocab_size=600), path)
    return path


def make_trainer(run_dir: str, batch_size: int, tokenizer_path: Path, local_loss: bool = False,
                 **overrides) -> Trainer:
    """Float64 NBoW towers on stdlib pairs; no dropout so any number of processes computes the same function."""
    pairs = stdlib_pairs(limit=96)
    tokenizer = load_code_tokenizer(tokenizer_path)
    seed_everything(0)
    config = DualEncoderConfig(query=TowerConfig(name="nbow", width=16, max_length=32, dropout=0.0),
                               item=TowerConfig(name="nbow", width=16, max_length=64, dropout=0.0, pooling="attention"),
                               embed_dim=8, init_temperature=0.2)
    model = build_dual_encoder(config, tokenizer, tokenizer).double()
    model.contrastive_loss.local_loss = local_loss
    docstrings, codes = zip(*pairs)
    train = TrainConfig(run_dir=run_dir, max_steps=1, batch_size=batch_size, lr=1e-2, warmup_steps=1, grad_clip=0.0,
                        checkpoint_every=100, log_every=1, progress=False, device="cpu")
    for key, value in overrides.items():
        setattr(train, key, value)
    return Trainer(train, model, CodePairs(list(docstrings), list(codes)),
                   PairCollator(model.query_tower.tokenize, model.item_tower.tokenize), kind="test-code")


def first_step_gradients(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Run one step; return the gradients the optimizer saw."""
    seen = {}

    def record(optimizer, args, kwargs):
        seen.update({name: p.grad.clone() for name, p in trainer.method.named_parameters() if p.grad is not None})

    handle = trainer.optimizer.register_step_pre_hook(record)
    trainer.fit()
    handle.remove()
    return seen


if __name__ == "__main__":
    out, tokenizer_path = Path(sys.argv[1]), Path(sys.argv[2])
    results = {}
    for mode, options in MODES.items():
        trainer = make_trainer(str(out / mode), LOCAL_BATCH, tokenizer_path, **options)
        results[mode] = first_step_gradients(trainer)
        results["world_size"] = trainer.world_size
    rank = world_info().rank
    results["broadcast"] = broadcast_object({"from rank": rank})
    with main_process_first():
        if rank == 0:
            time.sleep(0.5)
        with open(out / "order.txt", "a") as f:
            f.write(f"{rank}\n")
    resume = make_trainer(str(out / "resume"), LOCAL_BATCH, tokenizer_path, max_steps=4, checkpoint_every=2)
    resume.fit()
    torch.save(results, out / f"grads_rank{resume.rank}.pt")
