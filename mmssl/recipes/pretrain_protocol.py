"""One protocol for judging a pretrained encoder (pretext tasks, unimodal contrastive methods).

Two questions, asked the same way for every method so their rows are comparable:

1. **Frozen features.** Does the pretrained tower encode what a labelled task needs? Encode the
   task's train and test items with the frozen tower, fit a linear probe and a weighted kNN
   (:mod:`mmssl.eval.probe`) on the train features, score the test features; do the same for the
   *same* tower at random init (same config, same seed) — the reference every method must beat.
   :func:`probe_pretrained_vs_random`.
2. **Downstream retrieval.** Does starting the dual encoder's item tower from the checkpoint beat
   starting it from scratch at the same training budget? Train the dual-encoder recipe
   (:mod:`mmssl.recipes.dual_encoder`) twice — item tower ``pretrained=<checkpoint>`` and
   ``pretrained="scratch"`` — and score the test split: emoji text→image Recall@10 for image
   towers, CodeSearchNet MRR for code towers. :func:`downstream_pretrained_vs_scratch`.

Labelled tasks (:data:`LABELLED_TASKS`), all real and leak-free (the corpora's own splits: the
test items were never seen in pretraining, which uses the train split):

* ``emoji-category``: emoji image -> its Unicode group ("Smileys & Emotion", "Animals & Nature",
  ... 9 classes); split by base emoji;
* ``clipart-category``: openclipart drawing -> its top-level category (~20 classes);
* ``code-package``: a function's code -> its package (first path component: ``sympy``,
  ``django``, ...), the packages with at least ``min_per_class`` functions in both the train and the
  test split; the code split is by module, so test functions come from modules the probe never saw.

Example::

    from mmssl.recipes.pretrain_protocol import load_labelled_task, probe_pretrained_vs_random
    task = load_labelled_task("emoji-category")
    rows = probe_pretrained_vs_random(TowerConfig(name="resnet-tiny-64"), "runs/rotation", task)
    # {"pretrained": {"linear_probe", "knn", ...}, "random": {...}}

Image items are PIL images (RGB, the corpus's 128 px), code items are strings; towers take them
through their own ``prepare`` (``Tower.encode``). Everything runs on one device, with explicit
seeds, and returns plain dicts ready for JSON.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from tokenizers import Tokenizer

from mmssl.encoders.tower import Tower, TowerConfig
from mmssl.eval.probe import knn_accuracy, linear_probe_accuracy
from mmssl.kinds import TASK_CODE, TASK_IMAGE_TEXT
from mmssl.train.config import TrainConfig


@dataclass
class LabelledTask:
    """A labelled task's items and integer labels, train and test (``classes[label]`` is the name)."""

    name: str
    modality: Literal["image", "text"]
    train_items: list
    train_labels: torch.Tensor  # (N,) int64
    test_items: list
    test_labels: torch.Tensor  # (M,) int64
    classes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"task": self.name, "modality": self.modality, "train": len(self.train_items),
                "test": len(self.test_items), "classes": len(self.classes)}


LABELLED_TASKS = {
    "emoji-category": ("emoji", "image", "category"),
    "clipart-category": ("clipart", "image", "category"),
    "code-package": ("code", "text", "package"),
}


def _cap_per_class(indices: list[int], labels: list[str], cap: int | None, seed: int) -> list[int]:
    """At most ``cap`` indices per label, drawn with a seeded shuffle, in their original order."""
    if cap is None:
        return indices
    shuffled = list(indices)
    random.Random(seed).shuffle(shuffled)
    taken, kept = Counter(), set()
    for i in shuffled:
        if taken[labels[i]] < cap:
            taken[labels[i]] += 1
            kept.add(i)
    return [i for i in indices if i in kept]


def load_labelled_task(name: str, *, max_train_per_class: int | None = 100, max_test_per_class: int | None = 50,
                       min_per_class: int = 30, seed: int = 0) -> LabelledTask:
    """Load a task of :data:`LABELLED_TASKS` from the built corpora (train and test splits).

    Args:
        name: ``emoji-category``, ``clipart-category`` or ``code-package``.
        max_train_per_class, max_test_per_class: cap items per class (seeded draw) to bound the cost
            of encoding; ``None`` keeps all.
        min_per_class: ``code-package`` only: a package needs this many functions in each split.
        seed: the draw's seed.

    Raises:
        KeyError: unknown task.
        mmssl.data.corpus.CorpusNotBuiltError: the corpus is not built (``python -m mmssl data build``).
    """
    from mmssl.data.corpus import load_corpus
    from mmssl.recipes.contrastive import code_package

    if name not in LABELLED_TASKS:
        raise KeyError(f"unknown labelled task {name!r}; known: {', '.join(LABELLED_TASKS)}")
    corpus, modality, label_field = LABELLED_TASKS[name]
    splits = {}
    for split in ("train", "test"):
        ds = load_corpus(corpus, split)
        if modality == "image":
            items, labels = ds["image"], ds[label_field]
        else:
            items, labels = ds["code"], [code_package(p) for p in ds["path"]]
        splits[split] = (items, labels)
    if modality == "image":
        kept = {lab for lab in splits["train"][1] if lab}
    else:
        counts = [Counter(splits[s][1]) for s in ("train", "test")]
        kept = {lab for lab in counts[0] if counts[0][lab] >= min_per_class and counts[1][lab] >= min_per_class}
    classes = sorted(kept)
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for split, cap in (("train", max_train_per_class), ("test", max_test_per_class)):
        items, labels = splits[split]
        rows = _cap_per_class([i for i, lab in enumerate(labels) if lab in index], labels, cap, seed)
        chosen = [items[i] for i in rows]
        if modality == "image":
            chosen = _open_images(chosen)
        out[split] = (chosen, torch.tensor([index[labels[i]] for i in rows], dtype=torch.long))
    return LabelledTask(name, modality, *out["train"], *out["test"], classes=classes)


def _open_images(paths: list[str]) -> list:
    from mmssl.data.imageio import open_image, to_square_rgb

    return [to_square_rgb(open_image(p)) for p in paths]


def frozen_features(tower: Tower, items: list, batch_size: int = 64) -> torch.Tensor:
    """(N, output_dim) features of raw ``items`` from ``tower`` in eval mode, without gradients."""
    return tower.encode(items, batch_size=batch_size)


def probe_tower(tower: Tower, task: LabelledTask, batch_size: int = 64, knn_k: int = 20) -> dict:
    """Linear-probe and kNN test accuracy of ``tower``'s frozen features on ``task``.

    Returns:
        ``{"linear_probe", "linear_probe_train", "knn", "seconds"}`` (accuracies in [0, 1]).
    """
    if tower.modality != task.modality:
        raise ValueError(f"task {task.name!r} has {task.modality} items but tower {tower.config.name!r} "
                         f"encodes {tower.modality}")
    start = time.perf_counter()
    train = frozen_features(tower, task.train_items, batch_size)  # (N, D)
    test = frozen_features(tower, task.test_items, batch_size)  # (M, D)
    probe = linear_probe_accuracy(train, task.train_labels, test, task.test_labels)
    knn = knn_accuracy(train, task.train_labels, test, task.test_labels, k=knn_k)
    return {"linear_probe": probe["test_accuracy"], "linear_probe_train": probe["train_accuracy"], "knn": knn,
            "seconds": round(time.perf_counter() - start, 2)}


def probe_pretrained_vs_random(config: TowerConfig, checkpoint: str | Path, task: LabelledTask,
                               tokenizer: Tokenizer | None = None, seed: int = 0, **probe_kwargs) -> dict:
    """:func:`probe_tower` for the tower initialised from ``checkpoint`` and for the same tower at random
    init (built with the same config and ``seed``).

    Args:
        config: the tower's config (name and shape as in pretraining; ``pretrained`` is overridden).
        checkpoint: an mmssl checkpoint whose method holds this tower at ``.encoder`` (run folder,
            checkpoint folder or ``model.safetensors``).
        tokenizer: code towers: the tokenizer the checkpoint was trained with (else the run's
            ``tokenizer.json`` is used).

    Returns:
        ``{"pretrained": {...}, "random": {...}}``, each as :func:`probe_tower` returns.
    """
    from mmssl.encoders.registry import build_tower

    rows = {}
    for label, pretrained in (("pretrained", str(checkpoint)), ("random", "scratch")):
        torch.manual_seed(seed)
        tower = build_tower(dataclasses.replace(config, pretrained=pretrained, locked=False), tokenizer)
        # the random tower reads the same vocabulary as the checkpoint's (found beside the run)
        tokenizer = tokenizer or getattr(tower, "tokenizer", None)
        rows[label] = probe_tower(tower, task, **probe_kwargs)
    return rows


def downstream_retrieval(item: TowerConfig, task: Literal["image-text", "code"], train: TrainConfig,
                         output: str | Path, *, limit: int | None = None, seed: int = 0,
                         code_query: TowerConfig | None = None, code_eval_pairs: int | None = None) -> dict:
    """Train the dual-encoder recipe with ``item`` as the item tower and score its test split.

    image-text: corpus ``emoji``, locked MiniLM captions (features cached on disk), metric
    text→image Recall@1/5/10 on the emoji test split. code: corpus ``code``, query tower
    ``code_query`` (default a trainable NBoW over the item tower's tokenizer file, so both runs of a
    comparison share one vocabulary), metric CodeSearchNet MRR (groups of 1,000, no baselines).

    Args:
        item: the item tower; ``pretrained`` is a checkpoint path or ``"scratch"``. Code towers must
            name their tokenizer file in ``item.tokenizer`` (the pretext run's ``tokenizer.json``).
        task: ``"image-text"`` or ``"code"``.
        train: the budget (steps, batch size, lr); ``run_dir`` is set under ``output``.
        output: folder for the run and the model.
        limit: cap training pairs (quick runs).
        code_eval_pairs: code: score a seeded sample of this many test pairs (whole groups of
            1,000) instead of the whole split (5,770 pairs), to bound encoding time.

    Returns:
        ``{"metric": name, "value": float, "recall@1", "recall@5", "recall@10", "train_seconds"}``.
    """
    from mmssl.encoders import DualEncoderConfig
    from mmssl.eval.evaluate import evaluate_code, evaluate_image
    from mmssl.recipes.dual_encoder import DualEncoderRun, train_dual_encoder

    output = Path(output)
    train = dataclasses.replace(train, run_dir=str(output / "run"), seed=seed)
    if task == TASK_IMAGE_TEXT:
        model = DualEncoderConfig(query=TowerConfig(name="minilm", pretrained="minilm", locked=True), item=item,
                                  embed_dim=128)
        run = DualEncoderRun(task=TASK_IMAGE_TEXT, corpora=["emoji"], output=str(output / "model"), model=model,
                             train=train, limit=limit, evaluate=False)
    elif task == TASK_CODE:
        if code_query is None and not item.tokenizer:
            raise ValueError("code downstream runs need item.tokenizer (the tokenizer file the item tower was "
                             "pretrained with) or a code_query tower with its own tokenizer file")
        query = code_query or TowerConfig(name="nbow", max_length=32, tokenizer=item.tokenizer)
        model = DualEncoderConfig(query=query, item=item, embed_dim=128)
        run = DualEncoderRun(task=TASK_CODE, corpora=["code"], output=str(output / "model"), model=model,
                             train=train, limit=limit, evaluate=False)
    else:
        raise ValueError(f"task must be 'image-text' or 'code', got {task!r}")
    start = time.perf_counter()
    folder = train_dual_encoder(run, command=["downstream_retrieval"])
    seconds = time.perf_counter() - start
    if task == TASK_IMAGE_TEXT:
        results = evaluate_image(folder, split="test", corpora=["emoji"])
        row = next(r for r in results["rows"] if r["name"] == "model")["text_to_image"]
        metric, value = "emoji text->image R@10", row["recall@10"]
    elif code_eval_pairs is None:
        results = evaluate_code(folder, split="test", baselines=False)
        row = next(r for r in results["rows"] if r["name"] != "random")
        metric, value = "code MRR", row["mrr"]
    else:
        row = _code_mrr_on_sample(folder, code_eval_pairs, seed)
        metric, value = f"code MRR ({row['num_queries']} test pairs)", row["mrr"]
    return {"metric": metric, "value": value, **{f"recall@{k}": row[f"recall@{k}"] for k in (1, 5, 10)},
            "train_seconds": round(seconds, 1)}


def _code_mrr_on_sample(folder: Path, pairs: int, seed: int) -> dict:
    """CodeSearchNet MRR (groups of 1,000) on a seeded sample of ``pairs`` test pairs."""
    from mmssl.data.corpus import load_corpus
    from mmssl.eval.codesearchnet import codesearchnet_mrr
    from mmssl.model import load_model

    records = load_corpus("code", "test")
    rows = sorted(random.Random(seed).sample(range(len(records)), min(pairs, len(records))))
    records = records.select(rows)
    model = load_model(folder)
    queries = torch.from_numpy(model.encode_text(records["docstring"]))  # (Q, E)
    codes = torch.from_numpy(model.encode_code(records["code"]))  # (Q, E)
    return codesearchnet_mrr(queries, codes, group_size=min(1000, len(rows)), seed=seed)


def downstream_pretrained_vs_scratch(item: TowerConfig, checkpoint: str | Path, task: Literal["image-text", "code"],
                                     train: TrainConfig, output: str | Path, **kwargs) -> dict:
    """:func:`downstream_retrieval` twice at the same budget and seed: item tower from ``checkpoint``
    and from scratch. Returns ``{"pretrained": {...}, "scratch": {...}}``."""
    output = Path(output)
    return {label: downstream_retrieval(dataclasses.replace(item, pretrained=pretrained), task, train,
                                        output / label, **kwargs)
            for label, pretrained in (("pretrained", str(checkpoint)), ("scratch", "scratch"))}


def format_protocol_table(rows: list[dict]) -> str:
    """Rows of ``{"method", "task", "probe": {pretrained, random}, "downstream": {pretrained, scratch}}``
    (either part optional) as a plain-text table: probe and kNN accuracy, downstream metric."""
    header = ["method", "encoder", "task", "lin pre", "lin rand", "kNN pre", "kNN rand", "downstream", "pre",
              "scratch"]
    lines = [header]
    for r in rows:
        probe, down = r.get("probe") or {}, r.get("downstream") or {}
        pre, rand = probe.get("pretrained", {}), probe.get("random", {})
        dpre, dscr = down.get("pretrained", {}), down.get("scratch", {})
        lines.append([r.get("method", ""), r.get("encoder", ""), r.get("task", ""),
                      *(_fmt(d.get(k)) for d, k in ((pre, "linear_probe"), (rand, "linear_probe"),
                                                     (pre, "knn"), (rand, "knn"))),
                      dpre.get("metric", ""), _fmt(dpre.get("value")), _fmt(dscr.get("value"))])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"
