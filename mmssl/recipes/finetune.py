"""Fine-tune a saved dual encoder on the user's own data, from where it is now (not from scratch).

    corpus, _ = user_corpus("folder:~/photos")                       # mmssl.data.user
    finetune_dual_encoder("models/clip-default", [corpus], "models/clip-photos", user_train_config("models/clip-photos"))

A thin adapter over the dual-encoder recipe: :func:`finetune_run` is a :class:`DualEncoderRun` whose
``start_from`` is the saved model (every weight, projections and temperature included, instead of the
towers' initialisers), and :func:`~mmssl.recipes.dual_encoder.train_dual_encoder` does the rest. The new
model goes to a new folder; the old one is never written.
"""

from __future__ import annotations

from pathlib import Path

from mmssl.kinds import TASK_CODE, TASK_IMAGE_TEXT
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


def finetune_run(start: str | Path, corpora: str | list[str], output: str | Path, train: TrainConfig, *,
                 item_text: str = "full"):
    """The :class:`~mmssl.recipes.dual_encoder.DualEncoderRun` that trains ``start`` further on ``corpora``.

    Captions are used as they are (no keyword swaps), and no built test split is evaluated: the user's
    evaluation is their own queries (``mmssl eval --index``)."""
    from mmssl.recipes.dual_encoder import DualEncoderRun

    start = Path(start)
    corpora = [corpora] if isinstance(corpora, str) else list(corpora)
    return DualEncoderRun(task=_task_of(start), corpora=corpora, output=str(output), train=train, keyword_prob=0.0,
                          item_text=item_text, evaluate=False, start_from=str(start.resolve()))


def finetune_dual_encoder(start: str | Path, corpora: str | list[str], output: str | Path, train: TrainConfig, *,
                          item_text: str = "full", command: list[str] | None = None) -> Path:
    """Train the model saved at ``start`` further on the train split of ``corpora``; save it to ``output``.

    Args:
        start: a folder written by ``save_dual_encoder`` (``models/clip-default``, ``models/code-default``).
        corpora: corpus names under the data root (:func:`mmssl.data.user.user_corpus` writes them).
        output: a new folder; it must not exist (the old model stays as it is).
        item_text: code: what the item side reads (``"full"``: what an index of the project embeds).

    Raises:
        FileExistsError: ``output`` exists, or is ``start``.
    """
    from mmssl.recipes.dual_encoder import train_dual_encoder

    start, output = Path(start), Path(output)
    if output.exists():
        raise FileExistsError(f"{output} exists; fine-tuning never overwrites a model: pass a new --output")
    if output.resolve() == start.resolve():
        raise FileExistsError("the fine-tuned model must go to a new folder, beside the one it starts from")
    return train_dual_encoder(finetune_run(start, corpora, output, train, item_text=item_text), command)
