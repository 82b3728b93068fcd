"""The pretext towers (gpt, wavenet, pixelcnn-32, vq-encoder-32): the tower contract, causality, odd inputs."""

import pytest
import torch
from PIL import Image

from mmssl.encoders import TOWERS, build_tower
from mmssl.encoders.pretext_towers import PixelCNNTower, decode_bytes, encode_bytes

SMALL = {"gpt": dict(width=32, layers=1, heads=2, max_length=32), "wavenet": dict(width=16, layers=4, kernel_size=2),
         "pixelcnn-32": dict(width=16, layers=2, kernel_size=3), "vq-encoder-32": dict(width=16, layers=1)}


def _build(name, code_tokenizer, **kw):
    return build_tower(name, tokenizer=code_tokenizer if name == "gpt" else None, **{**SMALL[name], **kw})


@pytest.mark.parametrize("name", list(SMALL))
def test_registered_tower_contract(name, code_tokenizer, emoji_rgba, code_texts):
    assert name in TOWERS
    tower = _build(name, code_tokenizer)
    raw = emoji_rgba[:3] if tower.modality == "image" else code_texts[:3]
    inputs = tower.prepare(raw)
    tower.train()
    features = tower(inputs)
    assert features.shape == (3, tower.output_dim) and torch.isfinite(features).all()
    (features * torch.randn_like(features)).sum().backward()
    no_grad = [n for n, p in tower.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not no_grad, no_grad
    tower.lock()
    assert not any(p.requires_grad for p in tower.parameters()) and not tower.training
    assert torch.allclose(tower.encode(raw, batch_size=2), tower(inputs), atol=1e-5)


def test_pixelcnn_is_causal_without_blind_spot():
    torch.manual_seed(0)
    tower = PixelCNNTower(build_tower("pixelcnn-32", width=8, layers=3, kernel_size=3).config, image_size=8, levels=8)
    images = torch.randn(1, 3, 8, 8, requires_grad=True)
    i, j = 4, 3
    tower.feature_map(images)[0, :, i, j].sum().backward()
    seen = images.grad[0].abs().sum(0) > 0  # (8, 8)
    order = torch.arange(64).view(8, 8)
    assert not seen[order >= i * 8 + j].any(), "a pixel sees itself or a later pixel"
    # no blind spot: the row above, right of j (the vanilla PixelCNN's blind spot), is seen
    assert seen[i - 1, j + 1] and seen[i - 1, j + 2] and seen[i, j - 1]


@pytest.mark.parametrize("name", ["gpt", "wavenet"])
def test_sequence_towers_are_causal(name, code_tokenizer):
    tower = _build(name, code_tokenizer, dropout=0.0).eval()
    inputs = tower.tokenize(["def parse_query_string(qs): return dict(pairs)"])
    tokens = tower.embedding(inputs["input_ids"]).detach().requires_grad_(True)  # (1, L, D)
    t = 5
    states = tower.contextualise(tokens, inputs["attention_mask"])  # (1, L, D)
    (states[0, t] * torch.randn(states.shape[-1])).sum().backward()  # random readout: LayerNorm outputs sum to 0
    seen = tokens.grad[0].abs().sum(-1) > 0  # (L,)
    assert seen[: t + 1].any() and not seen[t + 1:].any()


def test_wavenet_receptive_field_and_bytes():
    tower = build_tower("wavenet", width=8, layers=8, kernel_size=2)
    assert tower.receptive_field == 256
    batch = encode_bytes(["", "é", "x" * 1000], max_length=64)
    assert batch["input_ids"].shape == (3, 64)
    assert batch["attention_mask"].sum(1).tolist() == [1, 3, 64]
    assert decode_bytes(batch["input_ids"][1].tolist()) == "é"
    with pytest.raises(ValueError, match="no use for a tokenizer"):
        build_tower("wavenet", tokenizer=object())


@pytest.mark.parametrize("name", ["pixelcnn-32", "vq-encoder-32"])
def test_image_towers_take_odd_sizes_grayscale_and_rgba(name, emoji_rgba):
    tower = build_tower(name, **SMALL[name])
    odd = [emoji_rgba[0],  # RGBA 136x128
           emoji_rgba[1].convert("L").resize((37, 91)),  # grayscale, odd size
           Image.new("P", (5, 3)), emoji_rgba[2].convert("RGB").resize((1, 200))]
    x = tower.prepare(odd)
    assert x.shape == (4, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
    # the transparent background becomes white, not black
    assert x[0, :, 0, 0].tolist() == pytest.approx([1.0] * 3, abs=0.2)
    assert torch.isfinite(tower(x)).all()
    if name == "pixelcnn-32":  # quantised to the tower's levels
        levels = ((x + 1) / 2 * tower.levels - 0.5)
        assert torch.allclose(levels, levels.round(), atol=1e-4)
