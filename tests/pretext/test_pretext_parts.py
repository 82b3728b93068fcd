"""The parts of the pretext methods against naive references: BERT masking, Hamming sets, MAE, VQ, sampling."""

import math

import torch

from mmssl.pretext.masked import MAEConfig, MaskedAutoencoder, MLMConfig, choose_mlm_positions, patchify, unpatchify
from mmssl.pretext.relation import maximal_hamming_permutations, minimum_hamming_distance
from mmssl.pretext.vqvae import EMAVectorQuantizer


def test_bert_masking_rates_and_exclusions():
    mask = torch.ones(400, 100, dtype=torch.long)
    mask[:, 80:] = 0  # padding
    chosen, to_mask, to_random = choose_mlm_positions(mask, MLMConfig(), torch.Generator().manual_seed(0))
    assert not chosen[:, 0].any() and not chosen[:, 80:].any()
    rate = chosen.sum().item() / (400 * 79)
    assert abs(rate - 0.15) < 0.01
    assert abs(to_mask.sum().item() / chosen.sum().item() - 0.8) < 0.02
    assert abs(to_random.sum().item() / chosen.sum().item() - 0.1) < 0.02
    assert not (to_mask & to_random).any() and not (to_mask & ~chosen).any()
    short = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]])  # two tokens; [CLS] alone
    chosen, _, _ = choose_mlm_positions(short, MLMConfig(mask_prob=0.0))
    assert chosen.tolist() == [[False, True, False, False], [False] * 4]


def test_maximal_hamming_set_beats_random_permutations():
    perms = maximal_hamming_permutations(30, seed=0)
    assert perms.shape == (30, 9) and len({tuple(p) for p in perms.tolist()}) == 30
    assert all(sorted(p) == list(range(9)) for p in perms.tolist())
    random_perms = torch.stack([torch.randperm(9, generator=torch.Generator().manual_seed(s)) for s in range(30)])
    assert minimum_hamming_distance(perms) >= 7 > 4 >= minimum_hamming_distance(random_perms)


def test_mae_patches_round_trip_and_encoder_sees_visible_patches_only():
    from mmssl.encoders import build_tower

    images = torch.randn(2, 3, 64, 64)
    assert torch.equal(unpatchify(patchify(images, 8), 8), images)
    assert torch.equal(patchify(images, 8)[0, 1], images[0, :, :8, 8:16].permute(1, 2, 0).flatten())
    mae = MaskedAutoencoder(build_tower("vit-tiny-64"), MAEConfig(decoder_width=32, decoder_layers=1)).eval()
    keep = torch.tensor([[0, 5, 9], [3, 4, 63]])
    changed = images.clone()
    changed[:, :, 8:16, 8:16] += 5  # patch 9 of a 8x8 grid: visible in sample 0, hidden in sample 1
    a, b = mae.encode_visible(images, keep), mae.encode_visible(changed, keep)
    assert a.shape == (2, 4, 192)
    assert not torch.allclose(a[0], b[0]) and torch.allclose(a[1], b[1])


def test_ema_quantizer_matches_a_naive_update_and_passes_gradients_straight_through():
    torch.manual_seed(0)
    vq = EMAVectorQuantizer(num_codes=4, code_dim=2, decay=0.9, dead_code_threshold=0.0)
    vq.initialised.fill_(True)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
    vq.embed_sum.copy_(vq.codebook)
    z = torch.tensor([[0.1, 0.0], [0.9, 0.1], [0.2, 1.1], [0.0, 0.9]]).T.reshape(1, 2, 2, 2).requires_grad_(True)
    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, 2)
    q, indices, logs = vq.train()(z)
    assert indices.flatten().tolist() == [0, 1, 2, 2]
    counts = torch.tensor([1.0, 1.0, 2.0, 0.0])
    size = 0.9 * torch.ones(4) + 0.1 * counts
    sums = 0.9 * torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    for row, k in zip(flat, [0, 1, 2, 2]):
        sums[k] += 0.1 * row
    n = size.sum()
    smoothed = (size + 1e-5) / (n + 4 * 1e-5) * n
    assert torch.allclose(vq.codebook, sums / smoothed[:, None], atol=1e-6)
    p = counts / 4
    expected = math.exp(-sum(x * math.log(x) for x in p.tolist() if x > 0))
    assert abs(logs["perplexity"] - expected) < 1e-4 and logs["codes_used"] == 0.75
    q.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))  # straight-through: dq/dz = I


def test_dead_codes_are_restarted_on_batch_vectors():
    vq = EMAVectorQuantizer(num_codes=8, code_dim=2, decay=0.5, dead_code_threshold=1.0).train()
    z = torch.randn(1, 2, 4, 4)
    vq(z)  # initialised from this batch; codes nobody picked decay to 0.5 < 1.0 and restart
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    _, _, logs = vq(z)
    restarted_rows = vq.cluster_size == 1.0
    assert 0 < logs["codes_restarted"] <= restarted_rows.sum().item()  # (a code used once also sits at 1.0)
    for code in vq.codebook[restarted_rows]:
        assert (flat - code).abs().sum(1).min() < 1e-4  # a restarted code is an encoder output of the batch


def test_samplers_produce_images_and_text(code_tokenizer):
    from mmssl.encoders import TowerConfig, build_tower
    from mmssl.pretext import NextTokenPrediction, PixelCNN, VQVAE
    from mmssl.pretext.autoregressive import decode_sample, sample_pixelcnn, sample_tokens
    from mmssl.encoders.pretext_towers import PixelCNNTower
    from mmssl.pretext.vqvae import VQVAEConfig, sample_vqvae

    pixel = PixelCNN(PixelCNNTower(TowerConfig(name="pixelcnn-32", width=8, layers=1), image_size=6, levels=4))
    images = sample_pixelcnn(pixel, 3)
    assert images.shape == (3, 3, 6, 6)
    levels = (images + 1) / 2 * 4 - 0.5
    assert torch.allclose(levels, levels.round(), atol=1e-5) and levels.min() >= 0 and levels.max() <= 3
    vq = VQVAE(build_tower("vq-encoder-32", width=16, layers=1), VQVAEConfig(num_codes=8, code_dim=4, prior_width=16,
                                                                            prior_layers=1, prior_heads=2))
    assert sample_vqvae(vq, 2).shape == (2, 3, 32, 32)
    lm = NextTokenPrediction(build_tower("wavenet", width=8, layers=2, max_length=16))
    rows = sample_tokens(lm, ["def "], max_new_tokens=20)
    assert len(rows[0]) == 5 + 20 and decode_sample(lm.encoder, rows[0]).startswith("def ")
