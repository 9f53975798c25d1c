"""The frame autoencoder: RGB frames <-> small latent frames the DiT works on.

A diffusers AutoencoderTiny (TAESD's layout: plain conv blocks, no attention, no sampling) in a small
configuration trained here; its decoder runs once per generated frame, so it is kept to a few ms on CPU.
Latents are normalised per channel (mean/std measured on the training frames, stored as buffers) so the
diffusion model sees roughly unit-variance inputs.

diffusers is imported only when an autoencoder is built (it takes seconds to import).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from worldmodel.config import AutoencoderConfig
from worldmodel.weights import load_weights, read_config, save_model_folder


class FrameAutoencoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_channels))
        self.register_buffer("latent_std", torch.ones(cfg.latent_channels))
        self.vae = None
        if cfg.kind == "pixels":
            return  # frames are their own latents: encode/decode only normalise
        # diffusers imports bitsandbytes when it is installed, whose CPU backend warns on import that it could not
        # fetch an optional kernel from the hub (we never want that download); keep that one logger quiet.
        logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
        from diffusers.models.autoencoders.autoencoder_tiny import AutoencoderTiny

        levels = len(cfg.encoder_blocks)
        self.vae = AutoencoderTiny(
            in_channels=3,
            out_channels=3,
            encoder_block_out_channels=(cfg.encoder_channels,) * levels,
            decoder_block_out_channels=(cfg.decoder_channels,) * levels,
            num_encoder_blocks=cfg.encoder_blocks,
            num_decoder_blocks=cfg.decoder_blocks,
            latent_channels=cfg.latent_channels,
            act_fn="relu",
            upsample_fn="nearest",
            upsampling_scaling_factor=2,
        )
        # Convolutions in channels-last layout (weights and inputs): oneDNN's fast path on a CPU, 15-30% off
        # an encode or decode at these sizes; the numbers are the same.
        self.vae.to(memory_format=torch.channels_last)

    def save_pretrained(self, folder: str | Path) -> None:
        """FOLDER/config.json + FOLDER/model.safetensors."""
        save_model_folder(Path(folder), self.cfg, self)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> FrameAutoencoder:
        folder = Path(folder)
        autoencoder = cls(read_config(AutoencoderConfig, folder))
        load_weights(autoencoder, folder / "model.safetensors")
        return autoencoder.eval()

    @torch.no_grad()
    def start_from(self, other: FrameAutoencoder) -> None:
        """Take `other`'s weights, where this one may have more latent channels: its latent channels come through
        as they were, the new ones start with no effect on the picture (the decoder reads them with zero weights;
        the encoder writes them with a tenth of its fresh initialisation, so they carry a signal to learn from).
        A sharper autoencoder then starts as good as the old one. Both must otherwise be the same layout."""
        if not (self.trainable and other.trainable):
            raise ValueError("start_from needs two trained-layout autoencoders, not pixel space")
        if self.cfg.latent_channels < other.cfg.latent_channels:
            raise ValueError(f"cannot start {self.cfg.latent_channels} latent channels from {other.cfg.latent_channels}")
        own, theirs = self.vae.state_dict(), other.vae.state_dict()
        if own.keys() != theirs.keys():
            raise ValueError("start_from needs the same autoencoder layout (blocks and channels)")
        encoder_out = f"encoder.layers.{len(self.vae.encoder.layers) - 1}"  # the last conv writes the latents
        decoder_in = next(k for k in own if k.startswith("decoder.") and k.endswith(".weight"))  # the first reads them
        for name, mine in own.items():
            old = theirs[name]
            if mine.shape == old.shape:
                mine.copy_(old)
            elif name.startswith(encoder_out):  # (C, ...) over the output channels
                mine[len(old) :].mul_(0.1)  # the new channels: their fresh initialisation, scaled down
                mine[: len(old)].copy_(old)
            elif name == decoder_in:  # (out, C, 3, 3) over the input channels
                mine.zero_()
                mine[:, : old.shape[1]].copy_(old)
            else:
                raise ValueError(f"start_from: {name} is {tuple(mine.shape)} here but {tuple(old.shape)} in the other")
        self.latent_mean.zero_()
        self.latent_std.fill_(1.0)

    @property
    def trainable(self) -> bool:
        return self.vae is not None

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [-1, 1] -> raw latents (B, C, h, w), before normalisation."""
        return x if self.vae is None else self.vae.encoder(x.contiguous(memory_format=torch.channels_last))

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents (B, C, h, w) -> frames (B, 3, H, W), roughly in [-1, 1]."""
        return z if self.vae is None else self.vae.decoder(z.contiguous(memory_format=torch.channels_last))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [-1, 1] -> normalised latents (B, C, h, w)."""
        z = self.encode_raw(x)
        return (z - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, C, h, w) -> frames (B, 3, H, W) clamped to [-1, 1]."""
        z = z * self.latent_std[:, None, None] + self.latent_mean[:, None, None]
        return self.decode_raw(z).clamp(-1, 1)

    @torch.no_grad()
    def set_latent_stats(self, frames: torch.Tensor) -> None:
        """Measure per-channel latent mean/std on frames (B, 3, H, W) in [-1, 1]."""
        z = self.encode_raw(frames)
        self.latent_mean.copy_(z.mean(dim=(0, 2, 3)))
        self.latent_std.copy_(z.std(dim=(0, 2, 3)).clamp_min(1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct frames (B, 3, H, W) in [-1, 1] (training; AutoencoderTiny's own forward rounds latents)."""
        return self.decode_raw(self.encode_raw(x))


def reconstruction_loss(recon: torch.Tensor, x: torch.Tensor, edge_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE plus an image-gradient L1 term that keeps block edges sharp. Returns (loss, parts as floats)."""
    mse = F.mse_loss(recon, x)
    edge = (recon.diff(dim=-1) - x.diff(dim=-1)).abs().mean() + (recon.diff(dim=-2) - x.diff(dim=-2)).abs().mean()
    return mse + edge_weight * edge, {"mse": float(mse.detach()), "edge": float(edge.detach())}


def to_model_range(obs: torch.Tensor) -> torch.Tensor:
    """uint8 frames (..., 3, H, W) -> float in [-1, 1]."""
    return obs.float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float frames in [-1, 1] -> uint8 (same shape)."""
    return x.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
