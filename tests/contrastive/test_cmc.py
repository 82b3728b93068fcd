"""CMC: luma vs chroma of real emoji, and body vs signature vs docstring of real stdlib functions."""

import pytest
import torch
from contrastive_helpers import fixed_batch, train_on

from mmssl.contrastive import CMC, ContrastiveConfig, build_method
from mmssl.encoders import TowerConfig, build_tower
from mmssl.recipes.contrastive import ContrastiveRun, make_views


def test_image_cmc_contrasts_luma_with_chroma_and_its_loss_falls(emoji_images):
    torch.manual_seed(0)
    towers = [build_tower("resnet-tiny-64") for _ in range(2)]
    method = CMC(towers, ["luma", "chroma"], num_samples=96, projection_dim=32, temperature=0.1)
    run = ContrastiveRun(method="cmc", modality="image")
    batch = fixed_batch(emoji_images[0][:10], make_views("split", run, towers[0]))
    assert set(batch) == {"index", "luma", "chroma"} and batch["luma"].shape == (10, 3, 64, 64)
    # the luma view is gray: its three normalised channels differ only by the per-channel mean/std
    gray = batch["luma"] * torch.tensor(towers[0].std).view(1, 3, 1, 1) + torch.tensor(towers[0].mean).view(1, 3, 1, 1)
    assert torch.allclose(gray[:, 0], gray[:, 1], atol=1e-5)
    losses = train_on(method, batch, steps=6)
    assert losses[-1] < 0.6 * losses[0]
    assert method.encoder is towers[0]  # the luma encoder is the exported tower
    assert not any(k.startswith("encoder.") for k in method.view_encoders.state_dict())


@pytest.mark.parametrize("objective", ["info_nce", "nce"])
def test_code_cmc_with_a_memory_bank_over_three_views(stdlib_functions, code_tokenizer, objective):
    torch.manual_seed(0)
    config = TowerConfig(name="nbow", width=32, max_length=64)
    encoder = build_tower(config, code_tokenizer)
    options = ContrastiveConfig(objective=objective, memory_bank=True, num_negatives=32, temperature=0.1,
                                projection_dim=16)
    method = build_method("cmc", encoder, options, num_samples=len(stdlib_functions),
                          make_tower=lambda: build_tower(config, code_tokenizer))
    assert method.views == ["body", "signature", "docstring"] and method.encoder is encoder
    run = ContrastiveRun(method="cmc", modality="code", options=options)
    codes = [r["original_string"] for r in stdlib_functions[:24]]
    batch = fixed_batch(codes, make_views("split", run, encoder),
                        tokenize={v: method.view_encoder(v).tokenize for v in method.views})
    bank_before = method.bank.clone()
    losses = train_on(method, batch, steps=15, lr=1e-2)
    assert losses[-1] < losses[0]
    assert not torch.equal(method.bank[:, :24], bank_before[:, :24])  # the rows of the batch moved
    assert torch.equal(method.bank[:, 24:], bank_before[:, 24:])  # the others did not
    loss, logs = method.loss(batch)
    assert {"loss_body_signature", "loss_body_docstring", "loss_signature_docstring"} <= set(logs)


def test_cmc_rejects_bad_configurations():
    towers = [torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)]
    for t in towers:
        t.output_dim = 2
    with pytest.raises(ValueError, match="memory_bank"):
        CMC(towers, ["a", "b"], 10, objective="nce")
    with pytest.raises(ValueError, match="distinct views"):
        CMC(towers, ["a", "a"], 10)
    with pytest.raises(ValueError, match="objective"):
        CMC(towers, ["a", "b"], 10, objective="triplet")
