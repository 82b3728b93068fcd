"""Every pretext method: its loss falls on real data, and its checkpoint initialises a dual-encoder tower."""

import dataclasses
import json

import pytest
import torch
from PIL import Image

from mmssl.encoders import TowerConfig, build_tower
from mmssl.pretext import METHODS, build_method
from mmssl.pretext.data import ImageDataset, TextDataset, TokenizingCollator
from mmssl.recipes.pretext import PretextRun, pretext_run_defaults, pretrain
from mmssl.train.config import TrainConfig

# tiny towers: each method's default family at a size that trains in seconds on one thread
TINY = {
    "causal-lm": TowerConfig(name="gpt", width=32, layers=1, heads=2, max_length=64, dropout=0.0),
    "wavenet": TowerConfig(name="wavenet", width=16, layers=4, kernel_size=2, max_length=64, dropout=0.0),
    "bilm": TowerConfig(name="bigru", width=32, layers=1, max_length=64, dropout=0.0),
    "mlm": TowerConfig(name="self-attention", width=32, layers=1, heads=2, max_length=64, dropout=0.0),
    "pixelcnn": TowerConfig(name="pixelcnn-32", width=16, layers=2, kernel_size=3),
    "mae": TowerConfig(name="vit-tiny-64", hflip=False),
    "rotation": TowerConfig(name="resnet-tiny-64", hflip=False),  # mean-pooled convs barely see orientation
    "jigsaw": TowerConfig(name="resnet-tiny-64", hflip=False),
    "vqvae": TowerConfig(name="vq-encoder-32", width=16, layers=1),
    "vqgan": TowerConfig(name="vq-encoder-32", width=16, layers=1),
}


def tiny_run(method: str, run_dir="runs/unused", steps: int = 2) -> PretextRun:
    run = pretext_run_defaults(method)
    run.encoder = TINY[method]
    run.samples = 0
    run.vqvae = dataclasses.replace(run.vqvae, num_codes=32, code_dim=8, prior_width=32, prior_layers=1,
                                    discriminator_start=0, discriminator_width=16)
    run.mae = dataclasses.replace(run.mae, decoder_width=32, decoder_layers=1)
    run.jigsaw = dataclasses.replace(run.jigsaw, num_permutations=4, hidden=32)
    run.train = TrainConfig(run_dir=str(run_dir), max_steps=steps, batch_size=8, lr=3e-3, warmup_steps=1,
                            checkpoint_every=steps, log_every=1, progress=False)
    return run


def _batch(method, run, emoji_array, code_texts, n=8):
    if METHODS[run.method].data == "images":
        dataset = ImageDataset(emoji_array[:n], method.encoder.transform(train=False))
        return torch.stack([dataset[i] for i in range(n)])
    return TokenizingCollator(method.encoder.tokenize)([code_texts[i] for i in range(n)])


@pytest.mark.parametrize("name", list(METHODS))
def test_loss_falls_on_real_data(name, emoji_array, code_texts, code_tokenizer):
    torch.manual_seed(0)
    run = tiny_run(name)
    method = build_method(run, code_tokenizer if run.encoder.name in ("gpt", "bigru", "self-attention") else None)
    batch = _batch(method, run, emoji_array, code_texts)
    optimizer = torch.optim.AdamW(method.parameters(), lr=3e-3)
    if name == "jigsaw":
        batch = batch[:4]  # 36 tiles a step
    # the VQ-VAE's total includes the prior, whose targets move while codes restart: follow the reconstruction
    watched = "reconstruction_mse" if name in ("vqvae", "vqgan") else None
    losses = []
    for _ in range(25):
        loss, logs = method.loss(batch)
        assert torch.isfinite(loss) and all(isinstance(v, float) for v in logs.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(logs[watched] if watched else loss.item())
    first, last = sum(losses[:3]) / 3, sum(losses[-5:]) / 5
    assert last < 0.9 * first, (name, [round(v, 3) for v in losses])


def _write_pngs(emoji_array, folder, n=16):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i}.png"
        Image.fromarray(emoji_array[i]).save(path)
        paths.append({"image": str(path)})
    return paths


@pytest.mark.parametrize("name", list(METHODS))
def test_checkpoint_initialises_a_tower(name, tmp_path, emoji_array, code_texts):
    torch.manual_seed(0)
    run = tiny_run(name, tmp_path / "run")
    if METHODS[name].data == "images":
        records = _write_pngs(emoji_array, tmp_path / "images")
    else:
        records = [{"code": c, "docstring": c.split("\n")[0]} for c in code_texts[:32]]
    run.tokenizer_vocab_size = 500
    run_dir = pretrain(run, records)
    state = json.loads((run_dir / "checkpoints" / "step_0000002" / "state.json").read_text())
    assert state["kind"] == f"pretext/{name}" and state["extra_config"]["encoder"]["name"] == run.encoder.name

    # what a dual encoder does: build the tower by name from the run folder (tokenizer found beside it)
    tower = build_tower(dataclasses.replace(run.encoder, pretrained=str(run_dir)))
    from safetensors.torch import load_file

    saved = {k[len("encoder."):]: v for k, v in load_file(str(run_dir / "checkpoints" / "step_0000002"
                                                               / "model.safetensors")).items()
             if k.startswith("encoder.")}
    assert saved.keys() == tower.state_dict().keys()
    for key, value in tower.state_dict().items():
        assert torch.equal(value, saved[key]), key
    scratch = build_tower(dataclasses.replace(run.encoder, pretrained="scratch"), getattr(tower, "tokenizer", None))
    assert any(not torch.equal(v, scratch.state_dict()[k]) for k, v in tower.state_dict().items())


def test_short_and_empty_sequences(code_tokenizer):
    """Sequences shorter than the context are padded and masked; nothing to predict gives exactly 0."""
    for name in ("causal-lm", "wavenet", "bilm", "mlm"):
        run = tiny_run(name)
        method = build_method(run, code_tokenizer if name != "wavenet" else None)
        batch = method.encoder.tokenize(["", "x", "def f(): pass"])
        loss, _ = method.loss(batch)
        assert torch.isfinite(loss) and loss > 0, name
        empty, _ = method.loss(method.encoder.tokenize(["", ""]))
        assert empty.item() == 0.0, name
        empty.backward()  # still a graph: the trainer's step survives an all-padding batch


def test_wrong_tower_for_a_method_is_a_clear_error(code_tokenizer):
    run = tiny_run("mae")
    run.encoder = TowerConfig(name="resnet-tiny-64")
    with pytest.raises(ValueError, match="MAE needs a ViT tower"):
        build_method(run)
    run = tiny_run("rotation")
    run.encoder = TINY["mlm"]
    with pytest.raises(ValueError, match="reads images, but tower 'self-attention' encodes text"):
        build_method(run, code_tokenizer)
    run = tiny_run("causal-lm")
    run.encoder = TINY["mlm"]
    with pytest.raises(ValueError, match="needs a causal tower"):
        build_method(run, code_tokenizer)
    run = tiny_run("bilm")
    run.encoder = dataclasses.replace(TINY["bilm"], layers=2)
    with pytest.raises(ValueError, match="one-layer"):
        build_method(run, code_tokenizer)
    with pytest.raises(KeyError, match="unknown pretext method"):
        pretext_run_defaults("simclr")
    with pytest.raises(ValueError, match="no images to pretrain on"):
        ImageDataset(torch.zeros(0, 8, 8, 3).numpy(), lambda x: x)
    with pytest.raises(ValueError, match="no texts"):
        TextDataset([])
