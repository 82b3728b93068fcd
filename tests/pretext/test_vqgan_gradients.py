"""VQ-GAN under the trainer's global gradient clipping: the discriminator must not set the clip factor."""

import torch

from mmssl.encoders import TowerConfig, build_tower
from mmssl.pretext.data import ImageDataset
from mmssl.pretext.vqvae import VQVAE, VQVAEConfig


def _gradient_norms(emoji_array, **config) -> dict[str, float]:
    """Per-part gradient norms of one VQ-GAN loss (GAN terms on from the first step) on 16 real emoji."""
    torch.manual_seed(0)
    method = VQVAE(build_tower(TowerConfig(name="vq-encoder-32", width=64, layers=2)),
                   VQVAEConfig(adversarial=True, discriminator_start=0, **config))
    dataset = ImageDataset(emoji_array[:16], method.encoder.transform(train=False))
    loss, logs = method.loss(torch.stack([dataset[i] for i in range(16)]))
    assert "discriminator_loss" in logs and torch.isfinite(loss)
    loss.backward()
    squares: dict[str, float] = {}
    for name, parameter in method.named_parameters():
        if parameter.grad is not None:
            part = "discriminator" if name.startswith("discriminator.") else "rest"
            squares[part] = squares.get(part, 0.0) + parameter.grad.pow(2).sum().item()
    return {part: value ** 0.5 for part, value in squares.items()}


def test_discriminator_gradients_do_not_dominate_the_clipped_norm(emoji_array):
    default = _gradient_norms(emoji_array)
    unscaled = _gradient_norms(emoji_array, discriminator_loss_scale=1.0)
    # unscaled, the discriminator's gradient is many times the autoencoder's and the prior's: clipping
    # the global norm to 1 would shrink every other update by that factor
    assert unscaled["discriminator"] > 5 * unscaled["rest"]
    assert default["discriminator"] < default["rest"]
    # the scale touches the discriminator's term only (AdamW's steps for it do not depend on the factor)
    assert abs(default["rest"] - unscaled["rest"]) < 1e-6 * unscaled["rest"]
    assert abs(default["discriminator"] - 0.01 * unscaled["discriminator"]) < 1e-4 * unscaled["discriminator"]


def test_adaptive_weight_balances_the_gradients_at_the_decoders_last_layer(emoji_array):
    torch.manual_seed(0)
    config = VQVAEConfig(adversarial=True, discriminator_start=0, adversarial_weight=0.1, prior_weight=0.0)
    method = VQVAE(build_tower(TowerConfig(name="vq-encoder-32", width=32, layers=1)), config)
    method.quantizer.eval()  # a fixed codebook: the reference passes below see the same codes
    dataset = ImageDataset(emoji_array[:8], method.encoder.transform(train=False))
    images = torch.stack([dataset[i] for i in range(8)])
    loss, logs = method.loss(images)
    # naive reference: the two terms' gradients at the last layer, from separate forward passes
    last = method.decoder[-1].weight
    _, q, _ = method.encode(images)
    reconstruction = method.decode(q)
    mse = torch.nn.functional.mse_loss(reconstruction, images)
    generator = -method.discriminator(reconstruction).mean()
    rec_grad, = torch.autograd.grad(mse, last, retain_graph=True)
    gen_grad, = torch.autograd.grad(generator, last)
    expected = 0.1 * rec_grad.norm() / (gen_grad.norm() + 1e-4)
    assert abs(logs["generator_weight"] - expected.item()) < 1e-4 * expected.item()
    # weighted, the adversarial gradient at that layer is adversarial_weight x the reconstruction's
    assert abs((logs["generator_weight"] * gen_grad).norm() / rec_grad.norm() - 0.1) < 1e-3
    with torch.no_grad():
        assert abs(method.loss(images)[1]["generator_weight"] - 0.1) < 1e-6  # no gradients: the fixed weight
