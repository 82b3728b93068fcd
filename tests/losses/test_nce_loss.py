"""Noise-contrastive estimation: loop reference, noise module, consistency at the true density."""

import math

import pytest
import torch

from mmssl.losses import NCELoss, nce_loss


def loop_nce(data_scores, noise_scores, data_log_q, noise_log_q):
    batch, num_noise = noise_scores.shape
    terms = []
    for b in range(batch):
        g = data_scores[b] - math.log(num_noise) - data_log_q[b]
        term = -torch.log(torch.sigmoid(g))
        for k in range(num_noise):
            g_noise = noise_scores[b, k] - math.log(num_noise) - noise_log_q[b, k]
            term = term - torch.log(1 - torch.sigmoid(g_noise))
        terms.append(term)
    return torch.stack(terms).mean()


def test_matches_loop_reference(matches_reference):
    generator = torch.Generator().manual_seed(5)
    data_scores = torch.randn(6, generator=generator, dtype=torch.float64)
    noise_scores = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    data_log_q = torch.rand(6, generator=generator, dtype=torch.float64).log()
    noise_log_q = torch.rand(6, 4, generator=generator, dtype=torch.float64).log()
    loss = matches_reference(nce_loss, loop_nce, data_scores, noise_scores, data_log_q, noise_log_q)
    assert loss > 0.5


def test_module_looks_up_the_noise_distribution():
    noise_probs = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    module = NCELoss(noise_probs, num_noise=3)
    noise = module.sample_noise(5, generator=torch.Generator().manual_seed(0))
    assert noise.shape == (5, 3) and int(noise.min()) >= 0 and int(noise.max()) <= 3
    data = torch.tensor([0, 1, 2, 3, 3])
    scores = torch.randn(4, dtype=torch.float64)
    log_q = (noise_probs / 10).log()
    expected = nce_loss(scores[data], scores[noise], log_q[data], log_q[noise])
    torch.testing.assert_close(module(scores[data], scores[noise], data, noise), expected, rtol=1e-12, atol=0)


def test_gradient_vanishes_at_the_true_log_density():
    """NCE is consistent: at s = log p_data the expected gradient is zero (Gutmann & Hyvarinen, thm 1)."""
    generator = torch.Generator().manual_seed(6)
    data_probs = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    module = NCELoss(torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=torch.float64), num_noise=4)
    data = torch.multinomial(data_probs, 40000, replacement=True, generator=generator)
    noise = module.sample_noise(40000, generator=generator)

    def gradient(scores):
        scores = scores.clone().requires_grad_(True)
        module(scores[data], scores[noise], data, noise).backward()
        return scores.grad

    assert float(gradient(data_probs.log()).abs().max()) < 0.01
    assert float(gradient(data_probs.log() + 0.5).abs().max()) > 0.05


def test_bad_input():
    with pytest.raises(ValueError, match="noise_scores has 3 rows but data_scores has 2"):
        nce_loss(torch.zeros(2), torch.zeros(3, 4), torch.zeros(2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="noise_log_noise_prob has shape \\(2, 3\\)"):
        nce_loss(torch.zeros(2), torch.zeros(2, 4), torch.zeros(2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="noise_probs must be > 0"):
        NCELoss(torch.tensor([0.5, 0.0, 0.5]), num_noise=2)
    with pytest.raises(ValueError, match="data_scores contains NaN"):
        nce_loss(torch.tensor([0.0, float("nan")]), torch.zeros(2, 4), torch.zeros(2), torch.zeros(2, 4))
