"""Flow matching with a noise level per frame (diffusion forcing), and what the network's output means.

A frame's latent z is noised along a straight line to Gaussian noise:  x = (1 - sigma) * z + sigma * eps,
sigma in [0, 1], drawn independently for every frame of a training clip. Context frames at inference carry
a small sigma too (noise augmentation against drift), and the network is always told each frame's sigma.

The network predicts what changes: the denoised frame is  z_hat_t = base_t + F_t,  where base_t is the
previous frame's input scaled by (1 - sigma_{t-1}) -- close to the previous clean frame when that frame
is clean, fading to zero when it is pure noise. With `view_fov` set, base_t is also turned by frame t's
mouse move (turn_view), so a turn costs the network nothing. The loss is the MSE between z_hat and z
(x0 prediction), which suits sampling in very few steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def add_noise(z: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """z, eps (B, T, C, h, w); sigma (B, T) -> noisy x."""
    s = sigma[..., None, None, None]
    return (1 - s) * z + s * eps


def turn_view(frames: torch.Tensor, camera: torch.Tensor, fov: float) -> torch.Tensor:
    """Frames (..., C, h, w) as the camera sees them after turning by camera (..., 2) = (pitch, yaw) degrees.

    A pinhole camera's rotation moves the picture's centre by f * tan(angle), f = (h / 2) / tan(fov / 2) for a
    vertical field of view `fov`; we shift the whole picture by that (exact at the centre, off by under a pixel
    at the edges for the turns people make). Yaw right moves the picture left, pitch up moves it down. What
    comes into view is the edge repeated: the network paints it. Latents of a convolutional autoencoder are
    pictures too (each cell is a 4x4 pixel patch), so this works on them unchanged.
    """
    lead, (C, h, w) = frames.shape[:-3], frames.shape[-3:]
    flat = frames.reshape(-1, C, h, w)
    angles = torch.deg2rad(camera.reshape(-1, 2).to(frames.dtype))
    scale = 1.0 / math.tan(math.radians(fov) / 2)  # picture half-widths per unit tan(angle); square frames
    theta = torch.zeros(flat.shape[0], 2, 3, dtype=frames.dtype, device=frames.device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = torch.tan(angles[:, 1]) * scale  # read from the right of where a yaw-right turn puts us
    theta[:, 1, 2] = -torch.tan(angles[:, 0]) * scale  # pitch up: read from above
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    turned = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return turned.reshape(*lead, C, h, w)


def residual_base(
    x: torch.Tensor,
    sigma: torch.Tensor,
    first: torch.Tensor | None = None,
    camera: torch.Tensor | None = None,
    fov: float = 0.0,
) -> torch.Tensor:
    """The frame each prediction is a change from: base_t = (1 - sigma_{t-1}) x_{t-1}, turned by camera_t.

    x (B, T, C, h, w), sigma (B, T). `first` (B, C, h, w) is the base of frame 0 (zero when absent: the first
    frame of a clip has nothing before it). camera (B, T, 2) is the mouse move that leads into each frame; with
    fov > 0 the base is turned by it -- also where the action is masked out for guidance: the turn is geometry,
    known whatever the network is told, so guidance amplifies only what the network learned of the action.
    """
    prev = (1 - sigma[:, :-1, None, None, None]) * x[:, :-1]
    head = torch.zeros_like(x[:, :1]) if first is None else first[:, None]
    base = torch.cat([head, prev], dim=1)
    if fov > 0 and camera is not None:
        base = turn_view(base, camera, fov)
    return base


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
    fov: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Diffusion-forcing loss on clean latents z (B, T, C, h, w). Returns (loss, per-frame MSE (B, T)).
    `fov` is the DiT's view_fov (the model may be wrapped in DDP, so it is passed in)."""
    x = add_noise(z, eps, sigma)
    base = residual_base(x, sigma, camera=camera, fov=fov)
    z_hat = base + model(x, sigma, keys, camera, act_mask)
    per_frame = (z_hat - z).pow(2).mean(dim=(2, 3, 4))  # (B, T)
    return per_frame.mean(), per_frame.detach()
