"""The image side of the dual-encoder recipe on tiny real data: Noto emoji plus two more "artworks" of the
same emoji (a greyscale and a mirrored drawing): train images whose concept another corpus holds out are
dropped, multiview pairs are one concept in two artworks of one split, and the recipe trains end to end with
and without the pretraining stage."""

import json

import pytest
from PIL import Image, ImageOps

from mmssl.encoders import DualEncoderConfig, TowerConfig, build_tower
from mmssl.recipes.dual_encoder import DualEncoderRun, PretrainStage, train_dual_encoder
from mmssl.train.config import TrainConfig

ARTWORKS = {"grey": ImageOps.grayscale, "mirrored": ImageOps.mirror}


def _artwork_record(r: dict, artwork: str, split: str, concept_split: str) -> dict:
    return {"id": f"emoji-artworks:{artwork}:{r['group']}", "image": f"images/{artwork}/{r['group']}.png",
            "text": r["text"], "captions": r["captions"], "group": r["group"], "split": split,
            "concept_split": concept_split, "source": "emoji-artworks", "artwork": artwork}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """``emoji`` (60 base emoji) and ``emoji-artworks``: every emoji in two more artworks, split as the
    emoji are, plus three leaks — two train emoji whose concept is held out in the artworks' test and
    unseen splits — and one unseen-style icon of a train concept (not a leak)."""
    from mmssl.data import emoji
    from mmssl.data.corpus import load_corpus

    root = tmp_path_factory.mktemp("data")
    emoji.fetch()
    emoji.build(root / "corpora" / "emoji", limit=60)
    folder = root / "corpora" / "emoji-artworks"
    records = {split: [] for split in ("train", "valid", "test", "unseen")}
    emoji_records = {s: load_corpus("emoji", s, root / "corpora" / "emoji").to_list() for s in ("train", "valid", "test")}
    for split, rows in emoji_records.items():
        for r in rows:
            for artwork, draw in ARTWORKS.items():
                (folder / "images" / artwork).mkdir(parents=True, exist_ok=True)
                draw(Image.open(r["image"]).convert("RGB")).save(folder / "images" / artwork / f"{r['group']}.png")
                records[split].append(_artwork_record(r, artwork, split, split))
    first, second, third = emoji_records["train"][:3]
    records["test"].append(_artwork_record(first, "grey", "test", "test") | {"id": "leak-test"})
    records["unseen"].append(_artwork_record(second, "mirrored", "unseen", "valid") | {"id": "leak-unseen"})
    records["unseen"].append(_artwork_record(third, "grey", "unseen", "train") | {"id": "new-style"})
    for split, rows in records.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _leaked_texts(data_dir):
    from mmssl.data.corpus import load_corpus

    return sorted(r["text"] for r in load_corpus("emoji", "train", data_dir / "corpora" / "emoji").to_list()[:2])


def test_train_images_of_a_concept_held_out_in_any_corpus_are_dropped(data_dir, monkeypatch):
    from mmssl.recipes.image_concepts import corpus_records, drop_held_out_concepts

    monkeypatch.setenv("MMSSL_DATA_DIR", str(data_dir))
    corpora = ["emoji", "emoji-artworks"]
    records = corpus_records(corpora)
    kept, dropped = drop_held_out_concepts(records, corpora)
    leaked = _leaked_texts(data_dir)
    gone = sorted({r["text"] for r in records} - {r["text"] for r in kept})
    assert gone == leaked
    # each leaked emoji is gone from train in all three drawings (Noto, grey, mirrored)
    assert dropped == len(records) - len(kept) == 6
    # on its own the emoji corpus splits by base emoji and leaks nothing to itself
    assert drop_held_out_concepts(corpus_records(["emoji"]), ["emoji"])[1] == 0


def test_multiview_pairs_are_one_concept_in_two_artworks_of_the_train_split(data_dir, monkeypatch):
    from mmssl.contrastive.data import MultiviewDataset
    from mmssl.data.pairs import load_images
    from mmssl.recipes.contrastive import ContrastiveRun, build_view_dataset, train_split
    from mmssl.recipes.image_concepts import concept_key, style_key

    monkeypatch.setenv("MMSSL_DATA_DIR", str(data_dir))
    run = ContrastiveRun(method="simclr", corpora=["emoji", "emoji-artworks"], multiview=True)
    records = train_split(run)
    tower = build_tower(TowerConfig(name="resnet-tiny-64"))
    dataset = build_view_dataset(run, "two_augmented", tower, records)
    assert isinstance(dataset, MultiviewDataset) and len(dataset) == len(records)
    assert {r["split"] for r in records} == {"train"}
    # every train emoji is drawn three times (Noto, grey, mirrored), so each has two partners in other styles
    assert dataset.num_with_partner() == len(records)
    for i, r in enumerate(records):
        partners = [records[j] for j in dataset.partners(i)]
        assert len(partners) == 2
        assert all(concept_key(p) == concept_key(r) and style_key(p) != style_key(r) for p in partners)
    sample = dataset[5]
    assert sample["index"] == 5 and sample["view1"].shape == sample["view2"].shape == (3, 64, 64)
    # an image whose concept has no other style pairs with itself
    alone = MultiviewDataset(load_images([records[0]["image"], records[1]["image"]]), lambda image: image,
                             ["a", "b"], ["noto", "noto"])
    assert alone.num_with_partner() == 0 and list(alone.partners(0)) == []
    with pytest.raises(ValueError, match="two-view method"):
        build_view_dataset(ContrastiveRun(method="deepcluster", multiview=True), "one_augmented", tower, records)


def _run(tmp_path, name: str, pretrain_steps: int) -> DualEncoderRun:
    return DualEncoderRun(
        corpora=["emoji", "emoji-artworks"], output=str(tmp_path / name), evaluate=False,
        model=DualEncoderConfig(query=TowerConfig(name="minilm", pretrained="minilm", locked=True),
                                item=TowerConfig(name="resnet-tiny-64"), embed_dim=64),
        train=TrainConfig(run_dir=str(tmp_path / f"{name}-run"), max_steps=6, batch_size=32, lr=2e-3, warmup_steps=2,
                          checkpoint_every=6, log_every=2, progress=False),
        pretrain=PretrainStage(steps=pretrain_steps, batch_size=32, warmup_steps=1))


def test_recipe_trains_with_and_without_the_pretraining_stage(data_dir, tmp_path, monkeypatch):
    import torch

    from mmssl.encoders.tower import load_encoder_weights

    monkeypatch.setenv("MMSSL_DATA_DIR", str(data_dir))
    scratch = json.loads((train_dual_encoder(_run(tmp_path, "scratch", 0), ["test"]) / "manifest.json").read_text())
    assert "pretrain" not in scratch and scratch["held_out_concept_pairs_dropped"] == 6
    assert scratch["run"]["model"]["item"]["pretrained"] == "scratch"

    chained = json.loads((train_dual_encoder(_run(tmp_path, "chained", 3), ["test"]) / "manifest.json").read_text())
    stage = chained["pretrain"]
    assert stage["method"] == "simclr" and stage["multiview"] and stage["steps"] == 3 and stage["seconds"] > 0
    assert stage["images"] == chained["train_pairs"] == scratch["train_pairs"]  # the same images, twice
    assert stage["data_hash"] == chained["data_hash"] and len(stage["data_hash"]) == 16
    # the dual encoder's image tower started from the pretraining run's checkpoint, not from scratch
    assert chained["run"]["model"]["item"]["pretrained"] == stage["run_dir"]
    rows = [json.loads(line) for line in (tmp_path / "chained-run-pretrain" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows][-1] == 3
    torch.manual_seed(0)
    pretrained = build_tower(TowerConfig(name="resnet-tiny-64"))
    load_encoder_weights(pretrained, stage["run_dir"])
    torch.manual_seed(0)
    fresh = build_tower(TowerConfig(name="resnet-tiny-64"))
    assert any(not torch.equal(a, b) for a, b in zip(pretrained.state_dict().values(), fresh.state_dict().values()))


def test_train_clip_flags_set_the_pretraining_stage():
    from mmssl.cli import build_parser
    from mmssl.config import resolve_config

    argv = ["train", "clip", "--pretrain.steps", "150", "--pretrain.multiview", "false", "--pretrain.method", "moco"]
    run = resolve_config(DualEncoderRun, build_parser(argv).parse_args(argv), base=DualEncoderRun())
    assert (run.pretrain.steps, run.pretrain.multiview, run.pretrain.method) == (150, False, "moco")
    assert DualEncoderRun().pretrain.steps == 0  # the default recipe trains from scratch
    argv = ["train", "clip", "--train.max-seconds", "1860", "--pretrain.max-seconds", "620",
            "--train.source-shares", "emoji=0.16,clipart=0.12"]
    run = resolve_config(DualEncoderRun, build_parser(argv).parse_args(argv), base=DualEncoderRun())
    assert (run.train.max_seconds, run.pretrain.max_seconds) == (1860.0, 620.0)
    assert run.train.source_shares == ["emoji=0.16", "clipart=0.12"]
    assert DualEncoderRun().train.max_seconds == 0 and DualEncoderRun().train.source_shares == []


def test_labelled_views_keep_the_given_images_aligned_with_their_records():
    import numpy as np

    from mmssl.recipes.contrastive import ContrastiveRun, build_view_dataset

    records = [{"image": f"{i}.png", "category": None if i % 3 == 0 else f"group {i % 2}"} for i in range(9)]
    images = np.stack([np.full((8, 8, 3), i, dtype=np.uint8) for i in range(9)])  # image i is all i
    run = ContrastiveRun(method="supervised")
    dataset = build_view_dataset(run, "labelled", build_tower(TowerConfig(name="resnet-tiny-64")), records, images)
    assert [int(item[0, 0, 0]) for item in dataset.items] == [1, 2, 4, 5, 7, 8]
    assert dataset.labels.tolist() == [1, 0, 0, 1, 1, 0]


class CallClock:
    """A stand-in for the trainer's ``time`` module whose clock advances one second per reading."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


def test_both_stages_stop_by_seconds_and_batch_by_corpus_shares(data_dir, tmp_path, monkeypatch):
    """Equal compute as equal seconds (train.max_seconds, pretrain.max_seconds) and fixed corpus shares
    (train.source_shares) in both stages, all recorded in the manifest."""
    from mmssl.train import trainer as trainer_module

    monkeypatch.setenv("MMSSL_DATA_DIR", str(data_dir))
    monkeypatch.setattr(trainer_module, "time", CallClock())
    samplers = []
    original = trainer_module.Trainer._sampler

    def spy(self):
        samplers.append(original(self))
        return samplers[-1]

    monkeypatch.setattr(trainer_module.Trainer, "_sampler", spy)
    run = _run(tmp_path, "timed", 1000)
    run.train.max_steps, run.train.max_seconds, run.train.source_shares = 1000, 6.0, ["emoji=0.5"]
    run.pretrain.max_seconds = 5.0
    manifest = json.loads((train_dual_encoder(run, ["test"]) / "manifest.json").read_text())
    stage = manifest["pretrain"]
    assert 1 <= stage["steps"] < 1000 and stage["seconds"] >= 5.0 and stage["max_seconds"] == 5.0
    assert 1 <= manifest["steps"] < 1000 and manifest["train_seconds"] >= 6.0 and manifest["max_seconds"] == 6.0
    assert manifest["source_shares"] == stage["source_shares"] == ["emoji=0.5"]
    assert manifest["run"]["train"]["max_seconds"] == 6.0 and manifest["run"]["pretrain"]["max_seconds"] == 5.0
    assert len(samplers) == 2  # pretraining, then the dual encoder: both share the batches between corpora
    for sampler in samplers:
        n = sampler.n  # 201 images: a third of them emoji (one emoji, two more artworks of it)
        assert len(sampler.members["emoji"]) == 67
        assert abs(sampler.counts["emoji"] - n / 2) <= 0.5 and sampler.counts["emoji-artworks"] == n - sampler.counts["emoji"]
