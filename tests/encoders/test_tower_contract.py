"""One contract for every registered tower (timm-style): build, shapes, finite outputs, gradients, locking,
preprocessing, truncation of huge inputs."""

import time

import pytest
import torch
from PIL import Image

from mmssl.encoders import TOWERS, Tower, build_tower, minilm_path, takes_code_tokenizer
from mmssl.kinds import IMAGES, TOWER_INPUTS

# ViT-B-32 and the CLIP-B text tower are the full-size ones: batch 1 keeps them at a few seconds
BATCH = {"vit-b-32": 1, "clip-text-b-32": 1}
CAPTIONS = ["a red fire truck", "parse a query string into a dict", "def f(x):\n    return x + 1"]


def _build(name: str, code_tokenizer, **overrides) -> Tower:
    tokenizer = code_tokenizer if takes_code_tokenizer(name) else None
    pretrained = "minilm" if name == "minilm" else "scratch"
    if name == "hf-text":  # a local HF folder: the packaged MiniLM's is one
        overrides.setdefault("source", str(minilm_path()))
    return build_tower(name, tokenizer=tokenizer, pretrained=pretrained, **overrides)


def _raw_batch(tower: Tower, size: int) -> list:
    if tower.modality == "image":
        colours = [(255, 0, 0), (0, 128, 255), (20, 200, 20)]
        return [Image.new("RGB", (128, 128), colours[i % 3]) for i in range(size)]
    return [CAPTIONS[i % 3] for i in range(size)]


@pytest.mark.parametrize("name", list(TOWERS))
def test_tower_contract(name, code_tokenizer):
    tower = _build(name, code_tokenizer)
    assert type(tower) is TOWERS[name].tower_class and tower.reads in TOWER_INPUTS
    batch = BATCH.get(name, 3)
    inputs = tower.prepare(_raw_batch(tower, batch))

    # zero-initialised gates (ModifiedResNet's last BN gamma per block, the "zero-init residual" trick)
    # block the gradient to their whole branch at init by design; give them values so that the
    # check below can see every parameter is wired into the output
    with torch.no_grad():
        for p in tower.parameters():
            if not p.any():
                p.normal_(0, 0.02)

    # forward: (B, output_dim), finite, float32
    tower.train()
    features = tower(inputs)
    assert features.shape == (batch, tower.output_dim)
    assert features.dtype == torch.float32 and torch.isfinite(features).all()

    # every trainable parameter gets a (non-zero) gradient; a random readout so that unit-norm
    # outputs (MiniLM) still carry one
    readout = torch.randn_like(features)
    (features * readout).sum().backward()
    trainable = [(n, p) for n, p in tower.named_parameters() if p.requires_grad]
    assert trainable, f"{name} has no trainable parameters"
    no_grad = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert not no_grad, f"{name}: parameters without a gradient: {no_grad[:5]}"

    # locking: no trainable parameter, eval mode for good, nothing for autograd to record
    tower.zero_grad(set_to_none=True)
    tower.lock()
    tower.train()
    assert not tower.training and not any(m.training for m in tower.modules())
    assert not any(p.requires_grad for p in tower.parameters())
    locked_features = tower(inputs)
    assert not locked_features.requires_grad
    assert torch.allclose(locked_features, tower(inputs))  # eval mode: deterministic

    # encode: raw items -> (N, D) in order, same as a batched forward
    encoded = tower.encode(_raw_batch(tower, batch), batch_size=2)
    assert encoded.shape == (batch, tower.output_dim)
    assert torch.allclose(encoded, locked_features, atol=1e-5)


@pytest.mark.parametrize("name", [n for n, registered in TOWERS.items() if registered.reads != IMAGES])
def test_sequence_tower_truncates_huge_inputs(name, code_tokenizer):
    tower = _build(name, code_tokenizer, max_length=64)
    huge = "def parse_query_string(qs):  return {k: v for k, v in pairs}\n" * 1700  # ~100k characters
    assert len(huge) >= 100_000
    start = time.perf_counter()
    inputs = tower.tokenize([huge, "short"])
    elapsed = time.perf_counter() - start
    assert inputs["input_ids"].shape[1] <= 64
    assert elapsed < 0.5, f"tokenizing 100k characters took {elapsed:.2f}s"
    assert torch.isfinite(tower(inputs)).all()


def test_locked_config_builds_a_frozen_tower(code_tokenizer):
    tower = build_tower("nbow", tokenizer=code_tokenizer, locked=True)
    assert tower.locked and not tower.training
    assert not any(p.requires_grad for p in tower.parameters())


def test_unknown_tower_and_misplaced_options_raise(code_tokenizer):
    with pytest.raises(KeyError, match="unknown tower 'vit-huge'"):
        build_tower("vit-huge")
    with pytest.raises(ValueError, match="only applies to the 'minilm' tower"):
        build_tower("nbow", tokenizer=code_tokenizer, pretrained="minilm")
    with pytest.raises(ValueError, match="needs a code tokenizer"):
        build_tower("cnn")
    with pytest.raises(ValueError, match="no use for a tokenizer"):
        build_tower("vit-tiny-64", tokenizer=code_tokenizer)
