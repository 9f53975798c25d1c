"""Few-step sampling of one new frame given its context (a key/value cache or the full history).

Euler steps along the flow-matching line, written with the x0 estimate: from level s to s' the sample becomes
(1 - s') z_hat + s' eps_hat, eps_hat = (x - (1 - s) z_hat) / s. The last step lands on z_hat itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from worldmodel.config import SamplingConfig
from worldmodel.dit import CausalDiT, KVCache
from worldmodel.schedule import euler_step, move_view


def sigma_schedule(steps: int, shift: float = 1.0) -> list[float]:
    """Noise levels from 1 down to 0, `steps` intervals; shift > 1 spends more of them at high noise."""
    levels = [1.0 - i / steps for i in range(steps + 1)]
    return [shift * s / (1 + (shift - 1) * s) for s in levels]


@dataclass
class FrameInputs:
    """One frame as the network sees it: latent input and its conditioning, batch-first."""

    x: torch.Tensor  # (B, C, h, w)
    sigma: torch.Tensor  # (B,)
    keys: torch.Tensor  # (B, num_keys)
    camera: torch.Tensor  # (B, 2)
    act_mask: torch.Tensor  # (B,) bool
    base_in: torch.Tensor | None = None  # (B, C + 1, h, w): the base it was made from and the memory's coverage

    @staticmethod
    def joined(frames: list[FrameInputs]) -> FrameInputs:
        """Several plays' frames as one batch (session.step_together); a missing base_in reads as zeros."""
        fields = [torch.cat([getattr(f, name) for f in frames]) for name in ("x", "sigma", "keys", "camera", "act_mask")]
        base_in = None
        if any(f.base_in is not None for f in frames):
            fill = next(f.base_in for f in frames if f.base_in is not None)
            base_in = torch.cat([
                f.base_in if f.base_in is not None else fill.new_zeros(len(f.x), *fill.shape[1:]) for f in frames
            ])
        return FrameInputs(*fields, base_in)

    def stacked(self, others: list[FrameInputs]) -> tuple[torch.Tensor, ...]:
        frames = others + [self]
        names = ("x", "sigma", "keys", "camera", "act_mask")
        return tuple(torch.stack([getattr(f, name) for f in frames], dim=1) for name in names)

    def stacked_base_in(self, others: list[FrameInputs]) -> torch.Tensor | None:
        """The frames' base inputs (B, T, C + 1, h, w) for a model that reads them (dit.base_input), else None."""
        frames = others + [self]
        if all(f.base_in is None for f in frames):
            return None
        fill = next(f.base_in for f in frames if f.base_in is not None)
        return torch.stack([torch.zeros_like(fill) if f.base_in is None else f.base_in for f in frames], dim=1)


def base_input(base: torch.Tensor, covered: torch.Tensor | None = None) -> torch.Tensor:
    """What a dit.base_input model reads beside a frame: its residual base (B, C, h, w) and the share of each
    latent cell the world memory covered (B, h, w; none when absent)."""
    cover = torch.zeros_like(base[:, :1]) if covered is None else covered[:, None].to(base.dtype)
    return torch.cat([base, cover], dim=1)


def base_of(frame: FrameInputs) -> torch.Tensor:
    """The residual base a frame gives the one after it (see schedule.residual_base)."""
    return (1 - frame.sigma[:, None, None, None]) * frame.x


def latent_base(model: CausalDiT, prev: FrameInputs, camera: torch.Tensor, motion: torch.Tensor | None) -> torch.Tensor:
    """The previous frame, turned by this frame's mouse move (and stepped as the keys walk, at the depth the
    model reads from that frame) when the model was trained so, on the latent grid."""
    base = base_of(prev)
    if model.cfg.view_fov > 0:
        inv_depth = None
        if model.cfg.egomotion:
            if motion is None:
                raise ValueError("this model steps the camera with the keys (dit.egomotion): pass motion")
            inv_depth = model.depth(prev.x, prev.sigma)
        base = move_view(base, camera, model.cfg.view_fov, inv_depth, motion)
    return base


@torch.no_grad()
def sample_frame(
    model: CausalDiT,
    noise: torch.Tensor,
    keys: torch.Tensor,
    camera: torch.Tensor,
    history: list[FrameInputs],
    pos: int,
    sampling: SamplingConfig,
    cache: KVCache | None,
    pending: FrameInputs | None,
    motion: torch.Tensor | None = None,
    base: torch.Tensor | None = None,
    covered: torch.Tensor | None = None,
    rope_shift: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Sample the latent of frame `pos` (B, C, h, w) from pure noise (B, C, h, w).

    With a cache: `cache` holds the context up to frame pos - 2 and `pending` is frame pos - 1, which the first
    step appends to the cache (its keys/values are computed in the same pass). Without a cache: `history` holds
    every frame 0 .. pos - 1 and the whole history is recomputed each step (slow; the reference for tests).
    motion (B, 4): the camera's step into this frame (worldmodel.egomotion), needed by a model with egomotion.
    base (B, C, h, w): the residual base when the caller made it (the Session's world memory, reprojected on
    pixels); by default the previous frame moved on the latent grid (latent_base). covered (B, h, w): the share
    of each latent cell the memory covered, for a model that reads its base (dit.base_input).
    rope_shift (B,): each game's frame index minus `pos`, for games at different points of their plays stepped
    together (CausalDiT.forward).
    Returns the frame's latent and, for a dit.base_input model, what it read beside it (the frame's base_in in
    the context from then on; None otherwise).
    """
    B = noise.shape[0]
    prev = pending if cache is not None else (history[-1] if history else None)
    if prev is None:
        raise ValueError("sampling a frame needs at least one context frame")
    # The base is geometry (a turn, a step, a reprojected memory), so guidance's null pass keeps it too:
    # guidance amplifies only what the network learned of the action.
    if base is None:
        base = latent_base(model, prev, camera, motion)
    base_in = base_input(base, covered) if model.cfg.base_input else None
    act_on = torch.ones(B, dtype=torch.bool, device=noise.device)
    levels = sigma_schedule(sampling.steps, sampling.shift)
    x = noise
    z_hat = noise
    for i, (s, s_next) in enumerate(zip(levels[:-1], levels[1:])):
        sigma = torch.full((B,), s, device=noise.device)

        def run(mask: torch.Tensor, first_pass: bool, x=x, sigma=sigma, i=i) -> torch.Tensor:  # this step's x, sigma, i
            current = FrameInputs(x, sigma, keys, camera, mask, base_in)
            if cache is None:
                return model(*current.stacked(history), pos0=0, base_in=current.stacked_base_in(history))[:, -1]
            if first_pass and pending is not None and i == 0:
                inputs = current.stacked([pending])
                return model(*inputs, pos0=pos - 1, cache=cache, commit=1, base_in=current.stacked_base_in([pending]),
                             rope_shift=rope_shift, predict_committed=False)[:, -1]
            inputs = current.stacked([])
            return model(*inputs, pos0=pos, cache=cache, base_in=current.stacked_base_in([]), rope_shift=rope_shift)[:, -1]

        z_hat = base + run(act_on, first_pass=True)
        if sampling.guidance != 1.0 and (sampling.guidance_steps == 0 or i < sampling.guidance_steps):
            # Classifier-free guidance on the action: the same context, the current action replaced by null.
            uncond = base + run(torch.zeros_like(act_on), first_pass=False)
            z_hat = uncond + sampling.guidance * (z_hat - uncond)
        if s_next > 0:
            x = euler_step(x, z_hat, s, s_next)
    return z_hat, base_in
