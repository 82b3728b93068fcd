"""Hybrid pretext task: VQ-VAE (van den Oord et al. 2017) with an autoregressive prior, and VQ-GAN.

    image (B, 3, S, S) -> encoder tower feature_map (B, W, h, w) -> 1x1 -> z (B, D, h, w)
      -> nearest codebook entry q (B, D, h, w), indices (B, h, w)
      -> straight-through z + (q - z).detach() -> 1x1 -> decoder -> reconstruction (B, 3, S, S)
    loss = MSE(reconstruction, image) + beta * MSE(z, q.detach())  [+ prior CE] [+ adversarial]

* Codebook: EMA updates (the paper's appendix; Razavi et al. 2019): per code an exponential moving
  count ``N_k`` and sum ``m_k`` of the encoder outputs assigned to it, ``e_k = m_k / N_k`` (Laplace
  smoothed), so the codebook gets no gradient and no codebook loss term. The codebook starts as
  random encoder outputs of the first training batch. Dead-code restarts (as in Jukebox): a code
  whose moving count falls under ``dead_code_threshold`` assignments per batch is moved to a
  random encoder output of the current batch. Logged every step: codebook perplexity ``exp(H(p))`` of the batch's code
  histogram, the share of codes used, the number restarted.
* Prior: a causal transformer over the h*w code grid in raster order (a ``[BOS]`` code first),
  trained on the detached code indices in the same run (``prior_weight``); :func:`sample_vqvae`
  draws code grids from it and decodes them.
* VQ-GAN option (Esser et al. 2021, without the perceptual loss): a PatchGAN discriminator with the
  hinge loss, switched on after ``discriminator_start`` steps. The generator term's weight is the
  paper's adaptive one, ``adversarial_weight * |grad_L MSE| / |grad_L G|`` at the decoder's last
  layer ``L`` (clamped to [0, 1e4], no gradient through it), so the adversarial gradient there is
  ``adversarial_weight`` times the reconstruction's whatever their raw scales
  (``adaptive_weight=False``: the fixed ``adversarial_weight``).
  The trainer has one optimizer, so the two players are separated by gradient routing instead:
  the discriminator loss sees detached reconstructions, and the generator's adversarial term
  evaluates the discriminator through ``torch.func.functional_call`` with detached parameters, so
  each loss moves only its own player. The discriminator loss enters the total scaled by
  ``discriminator_loss_scale``: the trainer clips the *global* gradient norm, and the
  discriminator's raw gradients dominate it (measured after a 100-step run: norm 24, against 3.9
  for encoder, decoder and prior together), so unscaled they set the clip factor of every
  parameter and all but stop the autoencoder and the prior once the GAN switches on (the prior's
  loss stayed at chance, 5.0 nats, in that run). AdamW's steps do not depend on a constant factor on a
  loss whose parameters no other term touches, so the scale changes the discriminator's training
  only through the clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mmssl.encoders.tower import Tower
from mmssl.encoders.pretext_towers import ResidualBlock


@dataclass
class VQVAEConfig:
    num_codes: int = 128
    code_dim: int = 32
    commitment: float = 0.25  # beta
    ema_decay: float = 0.99
    dead_code_threshold: float = 1.0  # moving count (assignments per batch) under which a code is restarted
    prior_weight: float = 1.0  # 0 disables the prior
    prior_width: int = 128
    prior_layers: int = 2
    prior_heads: int = 4
    adversarial: bool = False  # VQ-GAN: PatchGAN discriminator with the hinge loss
    adversarial_weight: float = 0.1
    adaptive_weight: bool = True  # VQ-GAN's gradient-balanced generator weight (module docstring)
    discriminator_start: int = 100  # steps of plain VQ-VAE training before the GAN terms switch on
    discriminator_width: int = 32
    discriminator_loss_scale: float = 0.01  # keeps its gradients from setting the global clip (module docstring)


class EMAVectorQuantizer(nn.Module):
    """Nearest-neighbour quantisation against a codebook updated by exponential moving averages.

    ``forward(z (B, D, h, w)) -> (q_st, indices (B, h, w), logs)``; ``q_st`` carries the
    straight-through gradient to ``z``. In training mode each call updates the codebook.
    """

    def __init__(self, num_codes: int, code_dim: int, decay: float = 0.99, dead_code_threshold: float = 1.0,
                 epsilon: float = 1e-5):
        super().__init__()
        self.num_codes, self.decay, self.epsilon, self.dead_code_threshold = num_codes, decay, epsilon, dead_code_threshold
        embed = torch.randn(num_codes, code_dim) * 0.1
        self.register_buffer("codebook", embed)  # (K, D)
        self.register_buffer("cluster_size", torch.ones(num_codes))  # (K,) moving counts
        self.register_buffer("embed_sum", embed.clone())  # (K, D) moving sums
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))  # codebook set from data yet?

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N,) index of the closest code (squared Euclidean)."""
        distance = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.T
                    + self.codebook.pow(2).sum(1))  # (N, K)
        return distance.argmin(1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) indices -> (B, D, h, w) code vectors."""
        return self.codebook[indices].permute(0, 3, 1, 2)

    @torch.no_grad()
    def _initialise(self, flat: torch.Tensor) -> None:
        """Codebook = random rows of the first batch's encoder outputs (repeated if the batch is small)."""
        picks = flat[torch.randint(0, len(flat), (self.num_codes,), device=flat.device)]  # (K, D)
        self.codebook.copy_(picks)
        self.embed_sum.copy_(picks)
        self.cluster_size.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, indices: torch.Tensor) -> int:
        one_hot = F.one_hot(indices, self.num_codes).type(flat.dtype)  # (N, K)
        self.cluster_size.mul_(self.decay).add_(one_hot.sum(0), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(one_hot.T @ flat, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + self.num_codes * self.epsilon) * total  # (K,)
        self.codebook.copy_(self.embed_sum / smoothed.unsqueeze(1))
        dead = (self.cluster_size < self.dead_code_threshold).nonzero().flatten()  # (d,)
        if len(dead):
            picks = flat[torch.randint(0, len(flat), (len(dead),), device=flat.device)]  # (d, D)
            self.codebook[dead] = picks
            self.embed_sum[dead] = picks
            self.cluster_size[dead] = 1.0
        return len(dead)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d).float()  # (B*h*w, D)
        if self.training and not self.initialised:
            self._initialise(flat.detach())
        indices = self.nearest(flat)  # (B*h*w,)
        restarted = self._ema_update(flat, indices) if self.training else 0
        q = self.lookup(indices.view(b, h, w)).to(z.dtype)  # (B, D, h, w)
        counts = torch.bincount(indices, minlength=self.num_codes).float()  # (K,)
        p = counts / counts.sum()
        perplexity = torch.exp(-(p * (p + 1e-10).log()).sum()).item()
        logs = {"perplexity": perplexity, "codes_used": float((counts > 0).float().mean()),
                "codes_restarted": float(restarted)}
        return z + (q - z).detach(), indices.view(b, h, w), logs


class CodePrior(nn.Module):
    """Causal transformer over a flattened code grid: ``[BOS] c_1 .. c_{n-1}`` -> logits for ``c_1 .. c_n``."""

    def __init__(self, num_codes: int, length: int, width: int, layers: int, heads: int):
        super().__init__()
        self.num_codes, self.length = num_codes, length
        self.embedding = nn.Embedding(num_codes + 1, width)  # last id = [BOS]
        self.positions = nn.Parameter(torch.randn(length, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, 0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_codes)

    def logits(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, t) codes (t <= length) -> (B, t, K): row i predicts code i given codes < i."""
        b, t = codes.shape
        bos = torch.full((b, 1), self.num_codes, dtype=torch.long, device=codes.device)
        x = self.embedding(torch.cat([bos, codes[:, :-1]], dim=1)) + self.positions[:t]  # (B, t, W)
        causal = torch.ones(t, t, dtype=torch.bool, device=codes.device).triu(1)
        return self.head(self.norm(self.transformer(x, mask=causal)))

    def loss(self, codes: torch.Tensor) -> torch.Tensor:
        logits = self.logits(codes)  # (B, n, K)
        return F.cross_entropy(logits.flatten(0, 1).float(), codes.flatten())


class PatchDiscriminator(nn.Module):
    """PatchGAN: stride-2 convs to a grid of real/fake logits (B, 1, S/4 - 1, S/4 - 1), one per patch."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.GroupNorm(8, 2 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 4, stride=1, padding=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class VQVAE(nn.Module):
    """VQ-VAE over a ``vq-encoder-32`` tower; ``loss(images (B, 3, S, S) in [-1, 1])``."""

    def __init__(self, encoder: Tower, config: VQVAEConfig | None = None):
        super().__init__()
        if not hasattr(encoder, "feature_map") or getattr(encoder, "causal", False):
            raise ValueError(f"the VQ-VAE needs the 'vq-encoder-32' tower, got {encoder.config.name!r}")
        self.encoder = encoder
        self.config = config = config or VQVAEConfig()
        width = encoder.output_dim
        self.grid = encoder.image_size // 4
        self.pre_quant = nn.Conv2d(width, config.code_dim, 1)
        self.quantizer = EMAVectorQuantizer(config.num_codes, config.code_dim, config.ema_decay,
                                            config.dead_code_threshold)
        self.decoder = nn.Sequential(
            nn.Conv2d(config.code_dim, width, 3, padding=1), ResidualBlock(width), ResidualBlock(width), nn.ReLU(),
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(width // 2, 3, 4, stride=2, padding=1))
        self.prior = (CodePrior(config.num_codes, self.grid * self.grid, config.prior_width, config.prior_layers,
                                config.prior_heads) if config.prior_weight > 0 else None)
        self.discriminator = PatchDiscriminator(config.discriminator_width) if config.adversarial else None
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # training calls, for the GAN start

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) -> (z, straight-through q, indices (B, h, w)); also returns the quantizer's logs."""
        z = self.pre_quant(self.encoder.feature_map(images))  # (B, D, h, w)
        q, indices, self._last_logs = self.quantizer(z)
        return z, q, indices

    def decode(self, q: torch.Tensor) -> torch.Tensor:
        return self.decoder(q)  # (B, D, h, w) -> (B, 3, S, S)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decode(self.quantizer.lookup(indices))  # (B, h, w) -> (B, 3, S, S)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images)[1])

    def adaptive_weight(self, reconstruction_loss: torch.Tensor, generator_loss: torch.Tensor) -> torch.Tensor:
        """VQ-GAN's balance |grad_L reconstruction| / |grad_L generator| at the decoder's last layer ``L``
        (a detached scalar; 1 where gradients are off, e.g. in evaluation)."""
        if not (torch.is_grad_enabled() and generator_loss.requires_grad):
            return torch.ones((), device=generator_loss.device)
        last = self.decoder[-1].weight
        rec_grad, = torch.autograd.grad(reconstruction_loss, last, retain_graph=True)
        gen_grad, = torch.autograd.grad(generator_loss, last, retain_graph=True)
        return (rec_grad.norm() / (gen_grad.norm() + 1e-4)).clamp(0.0, 1e4).detach()

    def loss(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        z, q, indices = self.encode(images)
        reconstruction = self.decode(q)  # (B, 3, S, S)
        mse = F.mse_loss(reconstruction.float(), images.float())
        commitment = F.mse_loss(z.float(), q.detach().float())  # ||z - sg[q]||^2 (q's value is the code)
        loss = mse + c.commitment * commitment
        logs = {"reconstruction_mse": mse.item(), "commitment": commitment.item(), **self._last_logs}
        if self.prior is not None:
            prior_loss = self.prior.loss(indices.flatten(1).detach())
            loss = loss + c.prior_weight * prior_loss
            logs["prior_loss"] = prior_loss.item()
        if self.discriminator is not None:
            if self.training:
                self.steps += 1
            if int(self.steps) > c.discriminator_start:
                real_logits = self.discriminator(images)
                fake_logits = self.discriminator(reconstruction.detach())
                d_loss = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()  # hinge
                frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
                g_loss = -torch.func.functional_call(self.discriminator, frozen, (reconstruction,)).mean()
                weight = c.adversarial_weight * self.adaptive_weight(mse, g_loss) if c.adaptive_weight \
                    else c.adversarial_weight
                loss = loss + c.discriminator_loss_scale * d_loss + weight * g_loss
                logs.update(discriminator_loss=d_loss.item(), generator_loss=g_loss.item(),
                            generator_weight=float(weight))
        return loss, logs


@torch.no_grad()
def sample_vqvae(method: VQVAE, num_images: int = 16, temperature: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Draw code grids from the prior (raster order) and decode them: (N, 3, S, S) in [-1, 1]."""
    if method.prior is None:
        raise ValueError("this VQ-VAE was trained without a prior (prior_weight = 0); nothing to sample from")
    was_training = method.training
    method.eval()
    generator = torch.Generator().manual_seed(seed)
    device = next(method.parameters()).device
    codes = torch.zeros(num_images, 0, dtype=torch.long, device=device)
    for _ in range(method.grid * method.grid):
        extended = torch.cat([codes, torch.zeros(num_images, 1, dtype=torch.long, device=device)], dim=1)
        logits = method.prior.logits(extended)[:, -1].float() / temperature  # (N, K)
        nxt = torch.multinomial(logits.softmax(-1).cpu(), 1, generator=generator).to(device)  # (N, 1)
        codes = torch.cat([codes, nxt], dim=1)
    images = method.decode_indices(codes.view(num_images, method.grid, method.grid)).clamp(-1, 1)
    method.train(was_training)
    return images
