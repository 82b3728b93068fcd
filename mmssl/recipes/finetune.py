"""Fine-tune a saved dual encoder on the user's own data, from where it is now (not from scratch).

    corpus, _ = user_corpus("folder:~/photos")                       # mmssl.data.user
    finetune_dual_encoder("models/clip-default", corpus, "models/clip-photos", TrainConfig(max_steps=100))

The dual-encoder recipe's own pieces do the work (:func:`~mmssl.recipes.dual_encoder.train_records`,
:func:`~mmssl.recipes.dual_encoder.build_training_set`, the one Trainer); only the starting point
differs: every weight of the saved model, projections and temperature included, instead of the
towers' initialisers. The new model goes to a new folder; the old one is never written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mmssl.io import write_json
from mmssl.kinds import TASK_CODE, TASK_IMAGE_TEXT, dual_encoder_run_checkpoint
from mmssl.train.config import TrainConfig

USER_TRAIN_DEFAULTS = dict(max_steps=100, batch_size=32, lr=1e-4, warmup_steps=10, weight_decay=0.01,
                           checkpoint_every=50)


def user_train_config(output: str | Path, **overrides) -> TrainConfig:
    """The fine-tuning defaults (short, gentle: the start is already trained), run folder beside ``output``."""
    output = Path(output)
    options = {**USER_TRAIN_DEFAULTS, "run_dir": str(output.parent / f".{output.name}.run"), **overrides}
    return TrainConfig(**options)


def _task_of(start: Path) -> str:
    from mmssl.model import load_model

    kind = load_model(start, device="cpu").kind
    return TASK_CODE if kind == "code" else TASK_IMAGE_TEXT


def finetune_dual_encoder(start: str | Path, corpus: str, output: str | Path, train: TrainConfig, *,
                          item_text: str = "full", command: list[str] | None = None) -> Path:
    """Train the model saved at ``start`` further on ``corpus``'s train split; save it to ``output``.

    Args:
        start: a folder written by ``save_dual_encoder`` (``models/clip-default``, ``models/code-default``).
        corpus: a corpus name under the data root (:func:`mmssl.data.user.user_corpus` writes one).
        output: a new folder; it must not exist (the old model stays as it is).
        item_text: code: what the item side reads (``"full"``: what an index of the project embeds).

    Raises:
        FileExistsError: ``output`` exists.
    """
    from mmssl.encoders import load_dual_encoder, save_dual_encoder
    from mmssl.recipes.dual_encoder import DualEncoderRun, build_training_set, train_records
    from mmssl.train.trainer import Trainer, seed_everything

    start, output = Path(start), Path(output)
    if output.exists():
        raise FileExistsError(f"{output} exists; fine-tuning never overwrites a model: pass a new --output")
    if output.resolve() == start.resolve():
        raise FileExistsError("the fine-tuned model must go to a new folder, beside the one it starts from")
    seed_everything(train.seed)
    task = _task_of(start)
    model = load_dual_encoder(start)
    run = DualEncoderRun(task=task, corpora=[corpus], output=str(output), model=model.config, train=train,
                         keyword_prob=0.0, item_text=item_text, evaluate=False)
    records = train_records(run)
    dataset, collate, _ = build_training_set(run, model, records)
    trainer = Trainer(train, model, dataset, collate_fn=collate, extra_config={"run": run},
                      kind=dual_encoder_run_checkpoint(task))
    last = trainer.fit()
    model.eval()
    saved = save_dual_encoder(model, output, model.config)
    write_json(saved / "manifest.json", {
        "task": task, "command": " ".join(command if command is not None else sys.argv),
        "started_from": str(start.resolve()), "corpora": [corpus], "train_pairs": len(dataset),
        "steps": train.max_steps, "train_minutes": round(trainer.fit_stats.seconds / 60, 2),
        "seed": train.seed, "final_train_loss": last.get("loss"),
        "start_manifest": _start_manifest(start)}, indent=2, default=str)
    return saved


def _start_manifest(start: Path) -> dict | None:
    path = start / "manifest.json"
    try:
        return {k: v for k, v in json.loads(path.read_text()).items() if k in ("task", "corpora", "steps")}
    except (OSError, ValueError):
        return None
