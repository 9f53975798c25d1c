"""Flow matching with a noise level per frame (diffusion forcing), and what the network's output means.

A frame's latent z is noised along a straight line to Gaussian noise:  x = (1 - sigma) * z + sigma * eps,
sigma in [0, 1], drawn independently for every frame of a training clip. Context frames at inference carry
a small sigma too (noise augmentation against drift), and the network is always told each frame's sigma.

The network predicts what changes: the denoised frame is  z_hat_t = base_t + F_t,  where base_t is the
previous frame's input scaled by (1 - sigma_{t-1}) -- close to the previous clean frame when that frame
is clean, fading to zero when it is pure noise. The loss is the MSE between z_hat and z (x0 prediction),
which suits sampling in very few steps.
"""

from __future__ import annotations

import torch

from worldmodel.dit import CausalDiT, KVCache


def add_noise(z: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """z, eps (B, T, C, h, w); sigma (B, T) -> noisy x."""
    s = sigma[..., None, None, None]
    return (1 - s) * z + s * eps


def residual_base(x: torch.Tensor, sigma: torch.Tensor, first: torch.Tensor | None = None) -> torch.Tensor:
    """The frame each prediction is a change from: base_t = (1 - sigma_{t-1}) x_{t-1}.

    x (B, T, C, h, w), sigma (B, T). `first` (B, C, h, w) is the base of frame 0 (zero when absent: the first
    frame of a clip has nothing before it).
    """
    prev = (1 - sigma[:, :-1, None, None, None]) * x[:, :-1]
    head = torch.zeros_like(x[:, :1]) if first is None else first[:, None]
    return torch.cat([head, prev], dim=1)


def denoise(
    model: CausalDiT,
    x: torch.Tensor,
    sigma: torch.Tensor,
    keys: torch.Tensor,
    camera: torch.Tensor,
    act_mask: torch.Tensor,
    base: torch.Tensor,
    pos0: int = 0,
    cache: KVCache | None = None,
    commit: int = 0,
) -> torch.Tensor:
    """The denoised estimate z_hat (B, T, C, h, w) of every input frame."""
    return base + model(x, sigma, keys, camera, act_mask, pos0=pos0, cache=cache, commit=commit)


def sample_train_sigmas(
    batch: int, frames: int, context_prob: float, context_sigma_max: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Independent noise level per frame (B, T): with probability context_prob a low, context-like level
    (uniform in [0, context_sigma_max]), else a level drawn with density 2s on [0, 1], leaning to high noise:
    that is where the next frame's layout, and so the action's effect, is decided. Low levels are what the
    model sees as context at inference, so many frames train the "clean-ish past, noisy present" case."""
    u = torch.rand(batch, frames, generator=generator).sqrt()
    low = torch.rand(batch, frames, generator=generator) * context_sigma_max
    use_low = torch.rand(batch, frames, generator=generator) < context_prob
    return torch.where(use_low, low, u)


def flow_loss(
    model: torch.nn.Module,
    z: torch.Tensor,
    keys: torch.Tensor,
    camera: torch.Tensor,
    act_mask: torch.Tensor,
    sigma: torch.Tensor,
    eps: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Diffusion-forcing loss on clean latents z (B, T, C, h, w). Returns (loss, per-frame MSE (B, T))."""
    x = add_noise(z, eps, sigma)
    z_hat = residual_base(x, sigma) + model(x, sigma, keys, camera, act_mask)
    per_frame = (z_hat - z).pow(2).mean(dim=(2, 3, 4))  # (B, T)
    return per_frame.mean(), per_frame.detach()
