"""Flow matching with a noise level per frame (diffusion forcing), and what the network's output means.

A frame's latent z is noised along a straight line to Gaussian noise:  x = (1 - sigma) * z + sigma * eps,
sigma in [0, 1], drawn independently for every frame of a training clip. Context frames at inference carry
a small sigma too (noise augmentation against drift), and the network is always told each frame's sigma.

The network predicts what changes: the denoised frame is  z_hat_t = base_t + F_t,  where base_t is the
previous frame's input scaled by (1 - sigma_{t-1}) -- close to the previous clean frame when that frame
is clean, fading to zero when it is pure noise. With `view_fov` set, base_t is also turned by frame t's
mouse move (turn_view), so a turn costs the network nothing; with `egomotion` it also steps as the keys walk
the camera (move_view), each part of the picture moved by its distance. The loss is the MSE between z_hat and z
(x0 prediction), which suits sampling in very few steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from worldmodel.dit import DepthHead


def add_noise(z: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """z, eps (B, T, C, h, w); sigma (B, T) -> noisy x."""
    s = sigma[..., None, None, None]
    return (1 - s) * z + s * eps


def turn_view(frames: torch.Tensor, camera: torch.Tensor, fov: float, mode: str = "bicubic") -> torch.Tensor:
    """Frames (..., C, h, w) as the camera sees them after turning by camera (..., 2) = (pitch, yaw) degrees.

    A pinhole camera's rotation moves the picture's centre by f * tan(angle), f = (h / 2) / tan(fov / 2) for a
    vertical field of view `fov`; we shift the whole picture by that (exact at the centre, off by under a pixel
    at the edges for the turns people make). Yaw right moves the picture left, pitch up moves it down. What
    comes into view is the edge repeated: the network paints it. Latents of a convolutional autoencoder are
    pictures too (each cell is a 4x4 pixel patch), so this works on them unchanged.
    """
    return move_view(frames, camera, fov, mode=mode)


def move_view(
    frames: torch.Tensor,
    camera: torch.Tensor,
    fov: float,
    inv_depth: torch.Tensor | None = None,
    motion: torch.Tensor | None = None,
    mode: str = "bicubic",
) -> torch.Tensor:
    """Frames (..., C, h, w) as the camera sees them after it turns by camera (..., 2) and, when given, steps
    by motion (..., 4) = (right, up, forward, zoom) (worldmodel.egomotion) with the frames' inverse depth
    (..., h, w) in 1/blocks.

    Backward warping: for every pixel of the new view we find where it was in the old one. A step of the
    camera by t moves a point at depth Z from x' to x = (x' + f t_right / Z) / (1 + t_forward / Z) (and the
    same for y with t_up, upwards), f = 1 / tan(fov / 2) in the [-1, 1] coordinates of grid_sample: near
    things move most, the sky (1 / Z = 0) not at all. The depth is read where the turn puts the pixel (the
    old frame's depth stands in for the new one's). A zoom above 1 (a sprint's wider view) shrinks the
    picture about its centre. Then the turn's shift, as in turn_view. `mode`: grid_sample's interpolation.
    """
    lead, (C, h, w) = frames.shape[:-3], frames.shape[-3:]
    flat = frames.reshape(-1, C, h, w)
    n, dtype = flat.shape[0], frames.dtype
    angles = torch.deg2rad(camera.reshape(-1, 2).to(dtype))
    f = 1.0 / math.tan(math.radians(fov) / 2)  # picture half-widths per unit tan(angle); square frames
    shift_x = (torch.tan(angles[:, 1]) * f)[:, None, None]  # read from the right of where a yaw-right turn puts us
    shift_y = (-torch.tan(angles[:, 0]) * f)[:, None, None]  # pitch up: read from above
    ys = (torch.arange(h, dtype=dtype, device=frames.device) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, dtype=dtype, device=frames.device) + 0.5) * (2.0 / w) - 1.0
    gy, gx = ys[None, :, None].expand(n, h, w), xs[None, None, :].expand(n, h, w)
    if motion is not None and inv_depth is not None:
        m = motion.reshape(-1, 4).to(dtype)
        gx, gy = gx * m[:, 3, None, None], gy * m[:, 3, None, None]
        turned = torch.stack([gx + shift_x, gy + shift_y], dim=-1)
        rho = F.grid_sample(inv_depth.reshape(-1, 1, h, w).to(dtype), turned, mode="bilinear", padding_mode="border",
                            align_corners=False)[:, 0]  # fmt: skip
        spread = (1.0 + m[:, 2, None, None] * rho).clamp(min=0.25)  # walking back into a near wall: keep it finite
        gx = (gx + f * m[:, 0, None, None] * rho) / spread
        gy = (gy - f * m[:, 1, None, None] * rho) / spread
    grid = torch.stack([gx + shift_x, gy + shift_y], dim=-1)
    # Bicubic, not bilinear: a walking step moves the picture by a fraction of a latent cell, and a bilinear blend
    # of two cells decodes as a smear that stays put (measured: 1/3 of the same step made in pixels; bicubic 2/3).
    moved = F.grid_sample(flat, grid, mode=mode, padding_mode="border", align_corners=False)
    return moved.reshape(*lead, C, h, w)


def residual_base(
    x: torch.Tensor,
    sigma: torch.Tensor,
    first: torch.Tensor | None = None,
    camera: torch.Tensor | None = None,
    fov: float = 0.0,
    inv_depth: torch.Tensor | None = None,
    motion: torch.Tensor | None = None,
) -> torch.Tensor:
    """The frame each prediction is a change from: base_t = (1 - sigma_{t-1}) x_{t-1}, moved by camera_t.

    x (B, T, C, h, w), sigma (B, T). `first` (B, C, h, w) is the base of frame 0 (zero when absent: the first
    frame of a clip has nothing before it). camera (B, T, 2) is the mouse move that leads into each frame; with
    fov > 0 the base is turned by it -- also where the action is masked out for guidance: the turn is geometry,
    known whatever the network is told, so guidance amplifies only what the network learned of the action.
    With inv_depth (B, T, h, w) of each frame of x and motion (B, T, 4) leading into each frame
    (worldmodel.egomotion), the base also steps: frame t - 1 moved by frame t's step at frame t - 1's depth.
    """
    prev = (1 - sigma[:, :-1, None, None, None]) * x[:, :-1]
    head = torch.zeros_like(x[:, :1]) if first is None else first[:, None]
    base = torch.cat([head, prev], dim=1)
    if fov > 0 and camera is not None:
        depth = None
        if inv_depth is not None and motion is not None:
            depth = torch.cat([torch.zeros_like(inv_depth[:, :1]), inv_depth[:, :-1]], dim=1)
        base = move_view(base, camera, fov, depth, motion if depth is not None else None)
    return base


def memory_residual_base(
    base: torch.Tensor,
    x: torch.Tensor,
    z: torch.Tensor,
    sigma: torch.Tensor,
    camera: torch.Tensor,
    fov: float,
    inv_depth: torch.Tensor,
    motion: torch.Tensor,
    remembered: torch.Tensor,
    use: torch.Tensor,
) -> torch.Tensor:
    """The residual base when the world memory made it (worldmodel.memory_bases), from the latent one.

    The latent base of frame t is (1 - s) M x_{t-1} = (1 - s) M ((1 - s) z_{t-1} + s eps_{t-1}), s = sigma_{t-1},
    M the move by frame t's turn and step. At play the memory's picture (encoded) stands in for the clean part
    M z_{t-1}, and the noise stays as it moved (Session._memory_base): so base + (1 - s)^2 (remembered - M z_{t-1}).
    `use` (B, T) bool: the frames to give the memory's base (never frame 0, which has no frame before it)."""
    clean_moved = residual_base(z, torch.zeros_like(sigma), camera=camera, fov=fov, inv_depth=inv_depth, motion=motion)
    s_prev = torch.cat([torch.zeros_like(sigma[:, :1]), sigma[:, :-1]], dim=1)
    scale = ((1 - s_prev) ** 2 * use.to(x.dtype))[..., None, None, None]
    return base + scale * (remembered - clean_moved)


def model_base(
    model: torch.nn.Module, x: torch.Tensor, sigma: torch.Tensor, camera: torch.Tensor, motion: torch.Tensor | None
) -> torch.Tensor:
    """residual_base as `model` (an unwrapped CausalDiT) was trained to build it: turned when it has a view_fov,
    stepped at its depth head's estimate when it has egomotion (then motion (B, T, 4) is needed)."""
    cfg = model.cfg
    if not cfg.egomotion:
        return residual_base(x, sigma, camera=camera, fov=cfg.view_fov)
    if motion is None:
        raise ValueError("this model steps the camera with the keys (dit.egomotion): pass motion")
    return residual_base(x, sigma, camera=camera, fov=cfg.view_fov, inv_depth=model.depth(x, sigma), motion=motion)


def euler_step(x: torch.Tensor, z_hat: torch.Tensor, s: float, s_next: float) -> torch.Tensor:
    """One Euler step along the flow-matching line from noise level s to s_next, written with the x0 estimate
    z_hat: the noise the sample holds is eps_hat = (x - (1 - s) z_hat) / s, and the sample at s_next is
    (1 - s_next) z_hat + s_next eps_hat."""
    eps_hat = (x - (1 - s) * z_hat) / s
    return (1 - s_next) * z_hat + s_next * eps_hat


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
    motion: torch.Tensor | None = None,
    true_inv_depth: torch.Tensor | None = None,
    depth_weight: float = 1.0,
    memory: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Diffusion-forcing loss on clean latents z (B, T, C, h, w). Returns (loss, per-frame MSE (B, T)).
    `fov` is the DiT's view_fov (the model may be wrapped in DDP, so it is passed in).

    With motion (B, T, 4) the model has a depth head (dit.egomotion): its inverse depth of each noisy frame
    steps the base, and it learns from true_inv_depth (B, T, h, w), the simulator's, by a squared error. The
    base uses the head's estimate (detached: the head learns depth only from depth), as it must at inference.

    For a model that reads its base (dit.base_input), `memory` holds the world memory's bases of the frames
    (worldmodel.memory_bases: remembered (B, T, C, h, w), covered (B, T, h, w), use (B, T) bool); frames not
    used get the latent base and a coverage of zero, as at play without the memory."""
    x = add_noise(z, eps, sigma)
    depth_loss = None
    dit = getattr(model, "module", model)
    if dit.cfg.base_input:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            raise NotImplementedError("dit.base_input training runs in one process (the base needs the depth first)")
        inv_depth = dit.depth(x, sigma)
        base = residual_base(x, sigma, camera=camera, fov=fov, inv_depth=inv_depth.detach(), motion=motion)
        cover = torch.zeros_like(base[:, :, :1])
        if memory is not None:
            use = memory["use"]
            base = memory_residual_base(base, x, z, sigma, camera, fov, inv_depth.detach(), motion, memory["remembered"], use)
            cover = (memory["covered"] * use[..., None, None].to(z.dtype))[:, :, None]
        out = model(x, sigma, keys, camera, act_mask, base_in=torch.cat([base, cover], dim=2))
    elif motion is not None:
        out, inv_depth = model(x, sigma, keys, camera, act_mask, with_depth=True)
        base = residual_base(x, sigma, camera=camera, fov=fov, inv_depth=inv_depth.detach(), motion=motion)
    if motion is not None:
        if true_inv_depth is not None:
            # Squared error: the step is linear in inverse depth, so its mean is the estimate to aim at (an L1 loss
            # aims at the median, which ran a quarter short here). Only on frames clean enough to tell a distance
            # by (at inference the head reads context frames, at noise <= 0.3), and against a target capped where
            # the head's output is (a face right at the eye has a huge inverse depth).
            target = true_inv_depth.clamp(max=DepthHead.MAX_INVERSE_DEPTH)
            readable = (sigma <= 0.5).to(inv_depth.dtype)[..., None, None].expand_as(inv_depth)
            depth_loss = ((inv_depth - target).pow(2) * readable).sum() / readable.sum().clamp(min=1.0)
    else:
        out = model(x, sigma, keys, camera, act_mask)
        base = residual_base(x, sigma, camera=camera, fov=fov)
    z_hat = base + out
    per_frame = (z_hat - z).pow(2).mean(dim=(2, 3, 4))  # (B, T)
    loss = per_frame.mean()
    if depth_loss is not None:
        loss = loss + depth_weight * depth_loss
    return loss, per_frame.detach()
