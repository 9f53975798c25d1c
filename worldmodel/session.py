"""Streaming play: start(image) once, then step(action) -> next frame, for as long as you like.

The session keeps a rolling context: the keys/values of the last `window - 1` frames in a KVCache, plus the
newest finished frame ("pending"), whose keys/values are computed in the same pass as the first denoising
step of the frame after it. So each frame costs `steps` passes over one frame's tokens (the first over two)
and one decode, whatever the length of the play.

Frames re-enter the context with a little fresh noise (sampling.context_sigma), as in training, against drift.
A session runs a batch of B games at once: give (B, H, W, 3) images and B actions per step.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from data.actions import Action, stack
from worldmodel.autoencoder import FrameAutoencoder, to_model_range, to_uint8
from worldmodel.config import SamplingConfig
from worldmodel.dit import CausalDiT, KVCache
from worldmodel.egomotion import EgoMotion
from worldmodel.sampler import FrameInputs, sample_frame


class Session:
    def __init__(
        self,
        dit: CausalDiT,
        autoencoder: FrameAutoencoder,
        sampling: SamplingConfig,
        seed: int = 0,
        use_cache: bool = True,
    ):
        """use_cache=False recomputes the whole history every frame (cost grows with the play; for tests)."""
        self.dit = dit
        self.autoencoder = autoencoder
        self.sampling = sampling
        self.use_cache = use_cache
        self.device = next(dit.parameters()).device
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.batch: int | None = None
        self.single = True
        self.pos = -1  # index of the newest frame

    @property
    def image_size(self) -> int:
        return self.autoencoder.cfg.image_size

    def _noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        # Drawn on the CPU from the session's generator so a seed gives the same play on any device.
        return torch.randn(shape, generator=self.generator).to(self.device)

    def _latent_shape(self) -> tuple[int, int, int, int]:
        cfg = self.dit.cfg
        return (self.batch, cfg.latent_channels, cfg.latent_size, cfg.latent_size)

    @torch.no_grad()
    def start(self, image: np.ndarray) -> np.ndarray:
        """Begin a play from a uint8 image (H, W, 3), or a batch (B, H, W, 3). Returns the start frame(s) as the
        model sees them (through the autoencoder), same layout as the input."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim not in (3, 4) or image.shape[-1] != 3:
            raise ValueError(f"start image must be uint8 (H, W, 3) or (B, H, W, 3), got {image.dtype} {image.shape}")
        self.single = image.ndim == 3
        images = image[None] if self.single else image
        size = self.image_size
        if images.shape[1:3] != (size, size):
            raise ValueError(f"start image is {images.shape[2]}x{images.shape[1]}; this model works at {size}x{size}")
        self.batch = images.shape[0]
        obs = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).to(self.device)  # a copy: images may be read-only
        z = self.autoencoder.encode(to_model_range(obs))  # (B, C, h, w)
        B = self.batch
        start = FrameInputs(
            x=z,
            sigma=torch.zeros(B, device=self.device),  # the start image is real: no noise
            keys=torch.zeros(B, self.dit.cfg.num_keys, device=self.device),
            camera=torch.zeros(B, 2, device=self.device),
            act_mask=torch.zeros(B, dtype=torch.bool, device=self.device),  # no action produced it
        )
        self.cache = KVCache(self.dit.cfg.window) if self.use_cache else None
        self.walks = [EgoMotion() for _ in range(B)]  # each game's walking state (used by egomotion models)
        self.pending = start
        self.history = [start]
        self.pos = 0
        return self._to_numpy(self.autoencoder.decode(z))

    @torch.no_grad()
    def step(self, act: Action | Sequence[Action]) -> np.ndarray:
        """Advance one frame: `act` (one Action, or B of them) produces the next frame. Returns uint8 frame(s)."""
        if self.batch is None:
            raise RuntimeError("call start(image) before step(action)")
        acts = [act] if isinstance(act, Action) else list(act)
        if len(acts) == 1 and self.batch > 1:
            acts = acts * self.batch
        if len(acts) != self.batch:
            raise ValueError(f"got {len(acts)} actions for a batch of {self.batch} sessions")
        keys_np, camera_np = stack(acts)
        keys = torch.from_numpy(keys_np).to(self.device)
        camera = torch.from_numpy(camera_np).to(self.device)
        motion = torch.from_numpy(np.stack([w.step(k, c) for w, k, c in zip(self.walks, keys_np, camera_np)]))
        pos = self.pos + 1
        z_hat = sample_frame(
            self.dit,
            self._noise(self._latent_shape()),
            keys,
            camera,
            history=self.history,
            pos=pos,
            sampling=self.sampling,
            cache=self.cache,
            pending=self.pending,
            motion=motion.to(self.device),
        )
        # The finished frame joins the context with a little fresh noise, the level it was trained to expect.
        s_c = self.sampling.context_sigma
        x_ctx = (1 - s_c) * z_hat + s_c * self._noise(self._latent_shape())
        on = torch.ones(self.batch, dtype=torch.bool, device=self.device)
        self.pending = FrameInputs(x_ctx, torch.full((self.batch,), s_c, device=self.device), keys, camera, on)
        if not self.use_cache:
            self.history.append(self.pending)
        self.pos = pos
        return self._to_numpy(self.autoencoder.decode(z_hat))

    def _to_numpy(self, frames: torch.Tensor) -> np.ndarray:
        out = to_uint8(frames).permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 3)
        return out[0] if self.single else out


