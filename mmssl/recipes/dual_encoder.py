"""Train a dual encoder end to end: corpus -> pairs -> (cached locked features) -> Trainer -> model folder.

Two recipes share this file, chosen by ``task``:

* ``image-text`` (CLIP-style): captions of the image corpora against their images;
* ``code`` (CodeSearchNet-style): the first docstring paragraph against the function's code.

The defaults are the release models of ``make models``: a locked MiniLM query tower whose
features are computed once and cached on disk, and a small item tower trained from scratch, so a
model trains in minutes on 2 CPU cores. Every field can be changed from a JSON/YAML file or a flag
(``scripts/train_clip.py --help``). The output folder holds the model (``save_dual_encoder``), the
resolved config and ``manifest.json`` (command, seed, data hash, throughput, metrics).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch

from mmssl.config import to_dict
from mmssl.data.corpus import split_file, split_records
from mmssl.distributed import broadcast_object, init_distributed, main_process_first
from mmssl.encoders import DualEncoderConfig, TowerConfig, build_dual_encoder, save_dual_encoder
from mmssl.encoders.cache import FeatureCache, StateCache
from mmssl.io import write_json
from mmssl.kinds import TASK_CODE, TASK_IMAGE_TEXT, dual_encoder_run_checkpoint
from mmssl.recipes.image_concepts import drop_held_out_concepts
from mmssl.train.config import TrainConfig
from mmssl.train.trainer import Trainer, resolve_device, seed_everything

def _clip_defaults() -> DualEncoderConfig:
    return DualEncoderConfig(query=TowerConfig(name="minilm", pretrained="minilm", locked=True),
                             item=TowerConfig(name="resnet-tiny-64"), embed_dim=256)


def _code_defaults() -> DualEncoderConfig:
    # queries: locked MiniLM (features cached once); code: MiniLM with its first 5 layers frozen (their token
    # states cached once, see StateCache) and the top layer fine-tuned; identity projections start the model at
    # MiniLM zero-shot, so training only has to improve on it
    return DualEncoderConfig(query=TowerConfig(name="minilm", pretrained="minilm", locked=True),
                             item=TowerConfig(name="minilm", pretrained="minilm", max_length=256, frozen_layers=5),
                             embed_dim=384, init_temperature=0.05, projection_init="identity")


@dataclass
class PretrainStage:
    """Image-text: pretrain the image tower on every train image before the dual encoder trains from it.

    ``steps`` 0 (the default) skips the stage; ``max_seconds`` > 0 stops it after that many seconds of
    optimisation even before ``steps`` (equal compute as equal time). The stage batches with the dual
    encoder's ``train.source_shares``. With ``multiview`` the two views of a sample are one
    concept in two artworks or icon sets, each SimCLR-augmented (the data's own multiview
    structure, :class:`mmssl.contrastive.data.MultiviewDataset`); without it two augmentations of one
    image (instance discrimination). ``method``: a two-view method of :data:`mmssl.contrastive.METHODS`
    (``simclr``, ``moco``), or any method with ``multiview`` false.
    """

    steps: int = 0
    max_seconds: float = 0.0
    method: str = "simclr"
    multiview: bool = True
    batch_size: int = 128
    lr: float = 1e-3
    warmup_steps: int = 20
    temperature: float = 0.2
    run_dir: str = ""  # "" = <train.run_dir>-pretrain


@dataclass
class DualEncoderRun:
    """What to train on and where to put it; ``model`` and ``train`` are the usual configs."""

    task: Literal["image-text", "code"] = "image-text"
    corpora: list[str] = field(default_factory=lambda: ["emoji", "clipart", "stamps", "game-icons"])
    output: str = "models/clip-default"
    model: DualEncoderConfig = field(default_factory=_clip_defaults)
    # channels_last: NHWC conv weights and images, faster for the ResNet image tower on CPU (README gives the figure)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(run_dir="runs/clip-default", max_steps=1500,
                                                                   channels_last="on"))
    keyword_prob: float = 0.3  # image-text: chance a sample's caption is a keyword/alias instead of its name
    tokenizer_vocab_size: int = 8000  # code towers: WordPiece vocabulary trained on the train split
    # code: the query views each function is paired with (mmssl.data.pairs.QUERY_VIEWS), and the item side's text
    # (mmssl.data.pairs.TRAIN_ITEM_TEXTS: "code" = docstring cut, "full" = what the product index embeds,
    # "nodoc" = "full" without the docstring)
    query_views: list[str] = field(default_factory=lambda: ["docstring"])
    item_text: str = "code"
    limit: int | None = None  # cap training pairs per corpus (quick runs and tests)
    subset_seed: int | None = None  # with limit: a seeded uniform sample of each corpus instead of its first rows
    evaluate: bool = True  # evaluate on the test split after training and record it in the manifest
    # > 0: L2-SP, add l2sp * ||theta - theta_0||^2 (trainable weights vs their pretrained start) to the loss
    # (mmssl.train.regularise): fine-tuning that stays close to zero-shot MiniLM
    l2sp: float = 0.0
    # code, > 0: one BM25-mined hard negative item per pair, drawn from the top `bm25_negatives` BM25 hits of
    # its query over the train items that are not its own (mmssl.eval.bm25.mine_bm25_negatives); 0: none
    bm25_negatives: int = 0
    pretrain: PretrainStage = field(default_factory=PretrainStage)  # image-text: pretrain the image tower first
    # a model folder (save_dual_encoder) whose every weight, projections and temperature included, starts the run
    # (fine-tuning on the user's data, mmssl.recipes.finetune); ``model`` is then that folder's config
    start_from: str | None = None


def code_run_defaults() -> DualEncoderRun:
    # about 2/3 of an epoch of the code train split (README: how long `make models` takes)
    return DualEncoderRun(task=TASK_CODE, corpora=["code"], output="models/code-default", model=_code_defaults(),
                          train=TrainConfig(run_dir="runs/code-default", batch_size=64, max_steps=320, lr=2e-4,
                                            weight_decay=0.01, warmup_steps=20, checkpoint_every=50))


def _data_hash(paths: list[Path]) -> str:
    digest = hashlib.sha1()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _features(tower, texts: list[str]) -> torch.Tensor:
    """Features of ``texts`` from a locked tower, through the on-disk cache."""
    start = time.perf_counter()
    cache = FeatureCache(tower)
    known = len(cache)
    features = cache.features(texts)
    print(f"[mmssl] {tower.config.name} features for {len(texts)} texts: {len(cache) - known} computed, "
          f"rest cached ({time.perf_counter() - start:.1f} s)")
    return features


def _states(tower, texts: list[str]):
    """A :class:`StateCache` holding the frozen-part states of every text (computed once, on disk)."""
    start = time.perf_counter()
    cache = StateCache(tower)
    known = len(cache)
    cache.ensure(texts)
    print(f"[mmssl] {tower.config.name} frozen-layer states for {len(texts)} texts: {len(cache) - known} computed, "
          f"rest cached ({time.perf_counter() - start:.1f} s)")
    return cache


def train_records(run: DualEncoderRun) -> list[dict]:
    """The train-split records of every corpus of ``run`` (read once, shared by tokenizer and dataset)."""
    return [r for name in run.corpora for r in split_records(name, "train", run.limit, run.subset_seed)]


def build_training_set(run: DualEncoderRun, model, records: list[dict], images=None):
    """(dataset, collate_fn, data files) for ``run.task`` from ``records`` (see :func:`train_records`).

    ``images``: image-text, the records' images already decoded (:func:`mmssl.data.pairs.load_images`)."""
    from mmssl.data.pairs import (CodePairs, ImageTextPairs, PairCollator, caption_choices, code_training_rows,
                                  load_images)

    files = [split_file(name, "train") for name in run.corpora]
    query_locked = model.query_tower.locked
    query_tokenize = None if query_locked else model.query_tower.tokenize
    if run.task == TASK_IMAGE_TEXT:
        captions = caption_choices(records)
        rows, matrix = None, None
        if query_locked:
            unique = sorted({c for cs in captions for c in cs})
            matrix = _features(model.query_tower, unique)  # (U, Dq)
            rows = {c: i for i, c in enumerate(unique)}
        if images is None:
            images = load_images([r["image"] for r in records])  # (N, 128, 128, 3) uint8
        dataset = ImageTextPairs(images, captions, model.item_tower.transform(train=True), run.keyword_prob,
                                 rows, matrix)
        dataset.sources = [r["source"] for r in records]  # each pair's corpus, for train.source_shares
        return dataset, PairCollator(query_tokenize), files
    docstrings, codes, groups = code_training_rows(records, run.query_views, run.item_text)
    features = _features(model.query_tower, docstrings) if query_locked else None
    states = _states(model.item_tower, codes) if getattr(model.item_tower.config, "frozen_layers", 0) else None
    return (CodePairs(docstrings, codes, features, states, groups, _negatives(run, docstrings, codes)),
            PairCollator(query_tokenize, model.item_tower.tokenize), files)


def _negatives(run: DualEncoderRun, queries: list[str], items: list[str]) -> list[str] | None:
    """The BM25-mined hard negative of each pair (``run.bm25_negatives`` > 0), else None."""
    if run.bm25_negatives <= 0:
        return None
    if run.train.grad_cache_chunk > 0:
        raise ValueError("bm25_negatives and train.grad_cache_chunk cannot be combined yet (GradCache embeds "
                         "only the pairs); set one of them to 0")
    from mmssl.eval.bm25 import mine_bm25_negatives

    start = time.perf_counter()
    negatives = mine_bm25_negatives(queries, items, run.bm25_negatives, seed=run.train.seed)
    print(f"[mmssl] mined a BM25 hard negative for each of {len(queries)} pairs (top {run.bm25_negatives}, "
          f"{time.perf_counter() - start:.1f} s)")
    return negatives


def _code_tokenizer(run: DualEncoderRun, records: list[dict]):
    """The code WordPiece tokenizer trained on the train split's code and docstrings, if a tower needs
    one; a resumed run reads the one saved in its run folder."""
    from mmssl.encoders import needs_code_tokenizer
    from mmssl.encoders.tokenizer import run_code_tokenizer

    if not any(needs_code_tokenizer(getattr(run.model, side)) for side in ("query", "item")):
        return None

    def texts() -> list[str]:
        return [t for r in records for t in ([r["docstring"], r["code"]] if run.task == TASK_CODE else [r["text"]])]

    return run_code_tokenizer(run.train.run_dir, run.train.resume, texts, run.tokenizer_vocab_size)


def train_dual_encoder(run: DualEncoderRun, command: list[str] | None = None) -> Path:
    """Train, save to ``run.output`` and write its manifest; returns the output folder."""
    seed_everything(run.train.seed)
    from mmssl.encoders import needs_code_tokenizer

    records = train_records(run)
    image_side: dict = {}
    images = None
    if run.task == TASK_IMAGE_TEXT:
        records, image_side["held_out_concept_pairs_dropped"] = drop_held_out_concepts(records, run.corpora)
        if run.pretrain.steps > 0:
            from mmssl.data.pairs import load_images

            images = load_images([r["image"] for r in records])  # decoded once for both stages
            run, image_side["pretrain"] = pretrain_image_tower(run, records, images)
            seed_everything(run.train.seed)  # the dual encoder starts from the same seed as one from scratch
    world = init_distributed(resolve_device(run.train.device))
    if run.start_from:  # the saved model's towers keep their tokenizers; its config is the run's model
        from mmssl.encoders import load_dual_encoder

        model = load_dual_encoder(run.start_from)
        run = replace(run, model=model.config)
    else:
        # every rank must use the same vocabulary, and WordPiece training is not reproducible across processes
        tokenizer = broadcast_object(_code_tokenizer(run, records) if world.rank == 0 else None)
        # only towers without a tokenizer of their own get the new one: a tower from a pretrained checkpoint
        # keeps the vocabulary its weights were trained with
        query_tokenizer, item_tokenizer = (tokenizer if needs_code_tokenizer(getattr(run.model, side)) else None
                                           for side in ("query", "item"))
        model = build_dual_encoder(run.model, query_tokenizer, item_tokenizer)
    with main_process_first():  # under torchrun rank 0 fills the feature caches, then the others read them
        dataset, collate, files = build_training_set(run, model, records, images)
    trainer = Trainer(run.train, _regularised(run, model), dataset, collate_fn=collate,
                      extra_config={"run": run}, kind=dual_encoder_run_checkpoint(run.task))
    if trainer.is_main:
        print(f"[mmssl] training {run.task} dual encoder on {len(dataset)} pairs from {', '.join(run.corpora)}; "
              f"device {trainer.device} x {trainer.world_size} process(es), "
              f"{sum(p.numel() for p in model.parameters() if p.requires_grad):,} trainable parameters")
    last = trainer.fit()
    if not trainer.is_main:
        return Path(run.output)
    fit = trainer.fit_stats  # this call's steps only: a resumed run does not count the earlier ones
    throughput = last.get("samples_per_s", float("nan"))
    print(f"[mmssl] trained {fit.steps} steps in {fit.seconds / 60:.1f} min; "
          f"throughput {throughput:.0f} samples/s (last window), {fit.samples_per_s:.0f} samples/s overall")
    model.eval()
    output = save_dual_encoder(model, run.output, run.model)
    manifest = {
        "task": run.task,
        **({"started_from": run.start_from} if run.start_from else {}),
        "command": " ".join(command if command is not None else sys.argv),
        "seed": run.train.seed,
        "corpora": run.corpora,
        "data_hash": _data_hash(files),
        "train_pairs": len(dataset),
        "steps": trainer.step,
        "max_steps": run.train.max_steps,
        "max_seconds": run.train.max_seconds,
        "budget_clock": run.train.budget_clock,
        "source_shares": run.train.source_shares,
        "train_minutes": round(fit.seconds / 60, 2),
        "train_seconds": round(trainer.train_seconds, 1),  # the whole run, resumed calls included
        "samples_per_s": round(fit.samples_per_s, 1),
        "device": str(trainer.device),
        "torch": torch.__version__,
        "final_train_loss": last.get("loss"),
        **image_side,
        "run": to_dict(run),
    }
    if run.evaluate:
        manifest["metrics"] = evaluate_trained(run, output)
    write_json(output / "manifest.json", manifest, indent=2, default=str)
    return output


def _regularised(run: DualEncoderRun, model):
    """``model`` as the trainer's method: wrapped in L2-SP when ``run.l2sp`` > 0."""
    if run.l2sp <= 0:
        return model
    if run.train.grad_cache_chunk > 0:
        raise ValueError("l2sp and train.grad_cache_chunk cannot be combined (GradCache calls the model's "
                         "embedding split, not the regularised loss); set one of them to 0")
    from mmssl.train.regularise import L2SPRegularised

    return L2SPRegularised(model, run.l2sp)


def pretrain_image_tower(run: DualEncoderRun, records: list[dict], images=None) -> tuple[DualEncoderRun, dict]:
    """Run ``run.pretrain`` on the image tower over ``records`` (``images``: their decoded images); returns
    the run with its item tower starting from the pretrained weights, and the stage's manifest entry
    (method, steps, optimisation seconds, data hash, run folder)."""
    from mmssl.recipes.contrastive import ContrastiveRun, pretrain_contrastive

    stage = run.pretrain
    run_dir = stage.run_dir or f"{run.train.run_dir}-pretrain"
    contrastive = ContrastiveRun(method=stage.method, modality="image", corpora=run.corpora, encoder=run.model.item,
                                 multiview=stage.multiview, limit=run.limit)
    contrastive.options.temperature = stage.temperature
    contrastive.options.seed = run.train.seed
    contrastive.train = replace(run.train, run_dir=run_dir, max_steps=stage.steps, batch_size=stage.batch_size,
                                lr=stage.lr, warmup_steps=stage.warmup_steps,
                                checkpoint_every=min(stage.steps, run.train.checkpoint_every),
                                max_seconds=stage.max_seconds)
    start = time.perf_counter()
    folder = pretrain_contrastive(contrastive, records, images)
    seconds = time.perf_counter() - start
    fit = json.loads((folder / "fit.json").read_text())
    # seconds: optimisation only, as the dual encoder's train_minutes; with_data_seconds adds decoding the images
    entry = {"method": stage.method, "multiview": stage.multiview, "steps": fit["total_steps"], "max_steps": stage.steps,
             "max_seconds": stage.max_seconds, "budget_clock": run.train.budget_clock, "source_shares": run.train.source_shares, "batch_size": stage.batch_size,
             "seconds": fit["total_seconds"], "with_data_seconds": round(seconds, 1),
             "images": len(records),
             "data_hash": _data_hash([split_file(name, "train") for name in run.corpora]), "run_dir": str(folder)}
    print(f"[mmssl] pretrained the image tower ({stage.method}{', multiview' if stage.multiview else ''}, "
          f"{fit['total_steps']} steps) in {seconds / 60:.1f} min; the dual encoder starts from {folder}")
    item = replace(run.model.item, pretrained=str(folder))
    return replace(run, model=replace(run.model, item=item)), entry


def evaluate_trained(run: DualEncoderRun, folder: Path) -> dict:
    """Test-split metrics of a freshly trained model (baselines included for code)."""
    from mmssl.eval import evaluate as evaluation

    if run.task == TASK_CODE:
        return evaluation.evaluate_code(folder, split="test")
    return evaluation.evaluate_image(folder, split="test", corpora=run.corpora)

