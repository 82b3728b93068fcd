"""The pretext run recipe: a typed run config and :func:`pretrain` (corpus -> Trainer -> checkpoint).

A run is a :class:`PretextRun` (JSON/YAML file and ``--flags`` via :mod:`mmssl.config`) of one of
:data:`mmssl.pretext.METHODS`:

    python -m mmssl pretrain rotation --train.max-steps 500 --train.run-dir runs/rotation
    python scripts/pretrain.py mlm --text captions --corpora emoji

The run folder is a normal trainer run (``checkpoints/``, ``metrics.csv``, ``curves.png``); code
towers also get ``tokenizer.json`` beside it. Each checkpoint's ``encoder.*`` tensors initialise the
tower in a dual encoder: ``TowerConfig(name=<encoder>, pretrained="runs/rotation")``. After training,
``samples.txt`` or ``samples.png`` shows what a generative method learned.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from mmssl.encoders.tower import TowerConfig
from mmssl.kinds import pretext_run_checkpoint
from mmssl.pretext.data import TextSource
from mmssl.pretext.masked import MAEConfig, MLMConfig
from mmssl.pretext.registry import METHODS, build_method
from mmssl.pretext.relation import JigsawConfig
from mmssl.pretext.vqvae import VQVAEConfig
from mmssl.train.config import TrainConfig


@dataclass
class PretextRun:
    """One pretraining run. ``encoder`` is the tower to pretrain (and later to initialise from)."""

    method: str = "rotation"
    encoder: TowerConfig = field(default_factory=lambda: TowerConfig(name="resnet-tiny-64"))
    corpora: list[str] = field(default_factory=lambda: ["emoji"])
    text: TextSource = "code"  # text methods: what to read (captions: the image corpora's captions)
    limit: int | None = None  # cap records per corpus (quick runs)
    tokenizer_vocab_size: int = 8000  # code-tokenizer towers: WordPiece trained on the train split
    samples: int = 8  # generative methods: samples written after training (0: none)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(run_dir="runs/pretext", max_steps=1000,
                                                                  batch_size=64, warmup_steps=50))
    mlm: MLMConfig = field(default_factory=MLMConfig)
    mae: MAEConfig = field(default_factory=MAEConfig)
    jigsaw: JigsawConfig = field(default_factory=JigsawConfig)
    vqvae: VQVAEConfig = field(default_factory=VQVAEConfig)


def pretext_run_defaults(method: str) -> PretextRun:
    """The default run of ``method``: its encoder, corpora, learning rate and run folder."""
    if method not in METHODS:
        raise KeyError(f"unknown pretext method {method!r}; known: {', '.join(METHODS)}")
    spec = METHODS[method]
    corpora = ["code"] if spec.data == "text" and spec.text != "captions" else ["emoji"]
    return PretextRun(method=method, encoder=dataclasses.replace(spec.encoder), corpora=corpora, text=spec.text,
                      train=TrainConfig(run_dir=f"runs/pretext-{method}", max_steps=1000, batch_size=64,
                                        lr=spec.lr, warmup_steps=50))


def _records(run: PretextRun) -> list[dict]:
    from mmssl.data.corpus import load_corpus

    records = []
    for name in run.corpora:
        ds = load_corpus(name, "train")
        if run.limit is not None:
            ds = ds.select(range(min(run.limit, len(ds))))
        records += ds.to_list()
    return records


def build_pretext_data(run: PretextRun, method: nn.Module, records: list[dict]):
    """(dataset, collate_fn) for ``run`` from train-split ``records``."""
    from mmssl.pretext.data import ImageDataset, TextDataset, TokenizingCollator, texts_of

    if METHODS[run.method].data == "images":
        from mmssl.data.pairs import load_images

        images = load_images([r["image"] for r in records])
        return ImageDataset(images, method.encoder.transform(train=True)), None
    return TextDataset(texts_of(records, run.text)), TokenizingCollator(method.encoder.tokenize)


def pretrain(run: PretextRun, records: list[dict] | None = None) -> Path:
    """Train ``run`` to ``run.train.max_steps``; returns the run folder (its checkpoints hold ``encoder.*``).

    Args:
        run: the run config.
        records: train records to use instead of ``run.corpora``'s train split (your own data):
            dicts with ``image`` (a file path) for image methods, ``code`` and ``docstring`` (or
            ``text``/``captions`` for ``text="captions"``) for text methods.
    """
    from mmssl.encoders import needs_code_tokenizer, takes_code_tokenizer
    from mmssl.encoders.tokenizer import run_code_tokenizer
    from mmssl.encoders.code import keep_code_tokenizer
    from mmssl.pretext.data import texts_of
    from mmssl.train.trainer import Trainer, seed_everything

    seed_everything(run.train.seed)
    run_dir = Path(run.train.run_dir)
    records = _records(run) if records is None else records
    tokenizer = None
    if needs_code_tokenizer(run.encoder):
        tokenizer = run_code_tokenizer(
            run_dir, run.train.resume, lambda: texts_of(records, "captions" if run.text == "captions" else "code+docstring"),
            run.tokenizer_vocab_size)
    elif takes_code_tokenizer(run.encoder.name):  # its own vocabulary, kept beside the checkpoints
        keep_code_tokenizer(run.encoder, run_dir)
    method = build_method(run, tokenizer)
    dataset, collate = build_pretext_data(run, method, records)
    trainer = Trainer(run.train, method, dataset, collate_fn=collate,
                      extra_config={"run": run, "encoder": run.encoder}, kind=pretext_run_checkpoint(run.method))
    trainable = sum(p.numel() for p in method.parameters() if p.requires_grad)
    encoder_params = sum(p.numel() for p in method.encoder.parameters())
    print(f"[mmssl] pretext {run.method} on {len(dataset)} {METHODS[run.method].data} items from "
          f"{', '.join(run.corpora)}; encoder {run.encoder.name} ({encoder_params:,} parameters, "
          f"{trainable:,} trainable in all); device {trainer.device}")
    last = trainer.fit()
    fit = trainer.fit_stats  # this call's steps, every process's samples
    print(f"[mmssl] {fit.steps} steps in {fit.seconds:.1f} s: {fit.samples_per_s:.1f} samples/s "
          f"overall, {last.get('samples_per_s', float('nan')):.1f} samples/s in the last window; "
          f"final loss {last.get('loss', float('nan')):.4f}")
    if run.samples > 0 and trainer.is_main:
        from mmssl.pretext.sampling import write_samples

        written = write_samples(method, run_dir, run.samples, seed=run.train.seed)
        if written is not None:
            print(f"[mmssl] samples written to {written}")
    return run_dir
