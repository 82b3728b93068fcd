"""Pretrain a tower with a contrastive method: corpus -> views -> Trainer -> checkpoint.

``python -m mmssl contrastive simclr --encoder.name resnet-tiny-64`` (or
``scripts/pretrain_contrastive.py simclr ...``) runs :func:`pretrain_contrastive`. The run folder
(``train.run_dir``) holds ``fit.json`` (steps and seconds of the last call and of the whole run), ``checkpoints/`` (each ``model.safetensors`` has the tower under
``encoder.*``, and ``state.json`` names it in ``extra_config.encoder``), the resolved configs,
metrics and curves, ``clusters.jsonl`` for the clustering methods, and ``tokenizer.json`` for code
towers. Initialise a dual-encoder tower from it with ``TowerConfig(name=..., pretrained=<run dir>)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from mmssl.contrastive.augment import CodeAugmenter, CodeAugmentConfig, function_views, luma_chroma_views, \
    simclr_image_transform
from mmssl.contrastive.cmc import CMC
from mmssl.contrastive.data import MultiviewDataset, ViewCollator, ViewDataset, one_view, two_views
from mmssl.contrastive.registry import METHODS, ContrastiveConfig, build_method, cmc_views, view_kind
from mmssl.encoders.tower import Tower, TowerConfig
from mmssl.io import write_json
from mmssl.kinds import MODALITY_IMAGE, MODALITY_TEXT, contrastive_run_checkpoint
from mmssl.train.config import TrainConfig


@dataclass
class ContrastiveRun:
    """What to pretrain, on what, and how (``train``: the optimisation)."""

    method: str = "simclr"  # key of mmssl.contrastive.METHODS
    modality: Literal["image", "code"] = "image"
    corpora: list[str] = field(default_factory=lambda: ["emoji"])  # image corpora, or ["code"]
    encoder: TowerConfig = field(default_factory=lambda: TowerConfig(name="resnet-tiny-64"))
    options: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    augment: CodeAugmentConfig = field(default_factory=CodeAugmentConfig)
    label_field: str = ""  # supervised: record field of the label ("" = category for images, package for code)
    image_min_scale: float = 0.08  # SimCLR crop: smallest area kept
    image_jitter: float = 0.5  # colour-jitter strength
    tokenizer_vocab_size: int = 8000  # code: WordPiece vocabulary trained on the train split
    limit: int | None = None  # cap items per corpus (quick runs and tests)
    # images, two-view methods (simclr, moco): the second view is the same concept in another artwork or icon
    # set (MultiviewDataset), not a second augmentation of the same image
    multiview: bool = False
    train: TrainConfig = field(default_factory=lambda: TrainConfig(run_dir="runs/contrastive", max_steps=1000,
                                                                   batch_size=128, lr=1e-3, warmup_steps=50))


METHOD_HELP = {
    "simclr": "instance discrimination: two augmented views, NT-Xent (SimCLR)",
    "moco": "instance discrimination against a queue of momentum-encoded keys (MoCo)",
    "deepcluster": "k-means pseudo-labels of the tower's features, re-clustered every N steps (DeepCluster)",
    "interclr": "instance views plus cluster-neighbour positives from a memory bank (InterCLR)",
    "cmc": "one tower per view (luma/chroma; body/signature/docstring), contrasted pairwise (CMC)",
    "supervised": "labelled metric learning (triplet, lifted, soft nearest neighbours) on category/package",
}


def contrastive_run_defaults(method: str) -> ContrastiveRun:
    """The default run of ``method``: its own run folder; CMC at CMC's temperature 0.07."""
    if method not in METHODS:
        raise KeyError(f"unknown contrastive method {method!r}; known: {', '.join(METHODS)}")
    run = ContrastiveRun(method=method)
    run.train.run_dir = f"runs/contrastive-{method}"
    if method == "cmc":
        run.options.temperature = 0.07
    return run


def code_package(path: str) -> str:
    """The top-level package of a code record's path (``"json/decoder.py"`` -> ``"json"``)."""
    return path.split("/")[0].removesuffix(".py")


def record_label(record: dict, run: ContrastiveRun) -> str | None:
    """The supervised label of a record: its ``label_field``, else the category (images) or package (code)."""
    if run.label_field:
        return record.get(run.label_field)
    return record.get("category") if run.modality == "image" else code_package(record["path"])


def _split_image_views(tower: Tower, views: list[str]) -> Callable[[Image.Image], dict[str, torch.Tensor]]:
    """CMC image views: one shared crop and flip, then the luma and chroma images."""
    unknown = set(views) - {"luma", "chroma"}
    if unknown:
        raise ValueError(f"image CMC views are 'luma' and 'chroma', got {sorted(unknown)}")
    geometry = transforms.Compose([
        transforms.RandomResizedCrop(tower.image_size, scale=(0.3, 1.0),
                                     interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip()])
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(tower.mean, tower.std)])

    def make(image: Image.Image) -> dict[str, torch.Tensor]:
        luma, chroma = luma_chroma_views(geometry(image.convert("RGB")))
        split = {"luma": luma, "chroma": chroma}
        return {v: to_tensor(split[v]) for v in views}  # (3, S, S) each

    return make


def _split_code_views(views: list[str]) -> Callable[[str], dict[str, str]]:
    unknown = set(views) - {"body", "signature", "docstring"}
    if unknown:
        raise ValueError(f"code CMC views are 'body', 'signature' and 'docstring', got {sorted(unknown)}")

    def make(code: str) -> dict[str, str]:
        split = function_views(code)
        return {v: split[v] or "pass" for v in views}  # an empty view would be only [CLS]

    return make


def make_views(view_kind: str, run: ContrastiveRun, tower: Tower) -> Callable[[Any], dict[str, Any]]:
    """The dataset's ``make_views`` for a method's ``view_kind`` and the run's modality."""
    if view_kind == "split":
        views = cmc_views(run.options, run.modality)
        return _split_image_views(tower, views) if run.modality == "image" else _split_code_views(views)
    if run.modality == "image":
        augment = simclr_image_transform(tower.image_size, tower.mean, tower.std, min_scale=run.image_min_scale,
                                         jitter=run.image_jitter)
    else:
        augment = CodeAugmenter(run.augment)
    return two_views(augment) if view_kind == "two_augmented" else one_view(augment)


def build_view_dataset(run: ContrastiveRun, method_view_kind: str, tower: Tower,
                       records: list[dict], images: np.ndarray | None = None) -> ViewDataset:
    """Items (images decoded once, or code strings), their views and (supervised) labels.

    ``images``: the records' images already decoded (:func:`mmssl.data.pairs.load_images`), else decoded here."""
    labels = None
    if method_view_kind == "labelled":
        names = [record_label(r, run) for r in records]
        if images is not None:  # kept aligned with the records
            images = images[[i for i, name in enumerate(names) if name]]
        records = [r for r, name in zip(records, names) if name]
        classes = sorted({name for name in names if name})
        if len(classes) < 2:
            raise ValueError(f"supervised pretraining needs >= 2 label values in {run.corpora}; "
                             f"field {run.label_field or 'category/package'!r} has {len(classes)}")
        index = {c: i for i, c in enumerate(classes)}
        labels = torch.tensor([index[name] for name in names if name], dtype=torch.long)
    if run.modality == "image" and images is None:
        from mmssl.data.pairs import load_images

        images = load_images([r["image"] for r in records])  # (N, 128, 128, 3) uint8
    if run.multiview:
        return _multiview_dataset(run, method_view_kind, tower, records, images)
    if run.modality == "image":
        items = images
    else:
        # CMC reads the docstring from the source; the other methods see what the dual encoder's
        # item tower sees: the code with its docstring removed
        items = [r["original_string"] if method_view_kind == "split" else r["code"] for r in records]
    dataset = ViewDataset(items, make_views(method_view_kind, run, tower), labels)
    dataset.sources = [r.get("source", "") for r in records]  # each item's corpus, for train.source_shares
    return dataset


def _multiview_dataset(run: ContrastiveRun, method_view_kind: str, tower: Tower, records: list[dict],
                       images: np.ndarray) -> MultiviewDataset:
    """Pairs of one concept in two styles, SimCLR-augmented (see :class:`MultiviewDataset`)."""
    from mmssl.recipes.image_concepts import concept_key, style_key

    if run.modality != "image" or method_view_kind != "two_augmented":
        raise ValueError(f"multiview pairs are image views for a two-view method (simclr, moco), not "
                         f"{run.modality} items for {run.method!r}; set multiview false or pick such a method")
    augment = simclr_image_transform(tower.image_size, tower.mean, tower.std, min_scale=run.image_min_scale,
                                     jitter=run.image_jitter)
    dataset = MultiviewDataset(images, augment,
                               [concept_key(r) for r in records], [style_key(r) for r in records])
    dataset.sources = [r.get("source", "") for r in records]  # each item's corpus, for train.source_shares
    print(f"[mmssl] multiview: {dataset.num_with_partner()} of {len(dataset)} images have their concept in "
          "another style; the rest pair with themselves")
    return dataset


def _code_tokenizer(run: ContrastiveRun, records: list[dict]):
    """Trained on the train split's code and docstrings and saved in the run folder (where
    ``build_tower(pretrained=run_dir)`` finds it); a resumed run reads the saved one."""
    from mmssl.encoders.tokenizer import run_code_tokenizer

    return run_code_tokenizer(run.train.run_dir, run.train.resume,
                              lambda: [text for r in records for text in (r["code"], r["docstring"])],
                              run.tokenizer_vocab_size)


def train_split(run: ContrastiveRun) -> list[dict]:
    """The train records of the run's corpora; for images without those whose concept another corpus holds out."""
    from mmssl.recipes.image_concepts import corpus_records, drop_held_out_concepts

    records = corpus_records(run.corpora, "train", run.limit)
    return drop_held_out_concepts(records, run.corpora)[0] if run.modality == "image" else records


def pretrain_contrastive(run: ContrastiveRun, records: list[dict] | None = None,
                         images: np.ndarray | None = None) -> Path:
    """Pretrain ``run.encoder`` with ``run.method``; returns the run folder (a ``pretrained=`` path).

    ``records``: the train records to pretrain on (default :func:`train_split`); ``images``: their images
    already decoded (a caller that needs them again decodes them once)."""
    from mmssl.encoders import build_tower, takes_code_tokenizer
    from mmssl.encoders.code import keep_code_tokenizer, saved_code_tokenizer
    from mmssl.distributed import broadcast_object, init_distributed
    from mmssl.train.trainer import Trainer, resolve_device, seed_everything

    if run.method not in METHODS:
        raise KeyError(f"unknown contrastive method {run.method!r}; known: {', '.join(METHODS)}")
    if run.modality == "image" and takes_code_tokenizer(run.encoder.name):
        raise ValueError(f"tower {run.encoder.name!r} does not encode image items; pick an image tower "
                         "(--encoder.name resnet-tiny-64 or vit-tiny-64)")
    if run.encoder.locked:
        raise ValueError("the encoder to pretrain is locked (encoder.locked = true); nothing would learn")
    seed_everything(run.train.seed)
    records = train_split(run) if records is None else records
    world = init_distributed(resolve_device(run.train.device))
    tokenizer = None
    run_dir = Path(run.train.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if run.modality == "code" and takes_code_tokenizer(run.encoder.name):
        if saved_code_tokenizer(run.encoder) is not None:  # its own file, or its pretrained checkpoint's
            if world.rank == 0:
                keep_code_tokenizer(run.encoder, run_dir)
        else:
            # one vocabulary on every rank: WordPiece training is not reproducible across processes
            tokenizer = broadcast_object(_code_tokenizer(run, records) if world.rank == 0 else None)

    def make_tower() -> Tower:
        return build_tower(run.encoder, tokenizer)

    encoder = make_tower()
    expected = MODALITY_IMAGE if run.modality == "image" else MODALITY_TEXT
    if encoder.modality != expected:
        raise ValueError(f"tower {run.encoder.name!r} encodes {encoder.modality}, not {run.modality} items; "
                         "pick a matching --encoder.name")
    dataset = build_view_dataset(run, view_kind(run.method), encoder, records, images)
    method = build_method(run.method, encoder, dataclasses.replace(run.options, seed=run.train.seed),
                          num_samples=len(dataset), make_tower=make_tower)
    tokenize = {}
    if run.modality == "code":  # each view is tokenised by the tower that encodes it
        tokenize = ({view: method.view_encoder(view).tokenize for view in method.views} if isinstance(method, CMC)
                    else {"view1": encoder.tokenize, "view2": encoder.tokenize})
    trainer = Trainer(run.train, method, dataset, collate_fn=ViewCollator(tokenize),
                      extra_config={"encoder": run.encoder, "run": run}, kind=contrastive_run_checkpoint(run.method))
    print(f"[mmssl] {run.method} on {len(dataset)} {run.modality} items from {', '.join(run.corpora)}; "
          f"tower {run.encoder.name}, device {trainer.device}, "
          f"{sum(p.numel() for p in method.parameters() if p.requires_grad):,} trainable parameters")
    trainer.fit()
    if trainer.is_main:  # this call's optimisation only (a resumed run does not count the earlier steps)
        fit = trainer.fit_stats
        write_json(run_dir / "fit.json", {"steps": fit.steps, "seconds": round(fit.seconds, 2),
                                          "samples_per_s": round(fit.samples_per_s, 1), "items": len(dataset),
                                          # the whole run, resumed calls included (the time budget's clock)
                                          "total_steps": trainer.step, "total_seconds": round(trainer.train_seconds, 2)})
    return run_dir

