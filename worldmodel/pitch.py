"""Where a picture looks up or down: the camera's pitch, read from one frame.

A play starts from a single picture, and the walk (worldmodel.egomotion) needs the camera's pose from there.
Yaw only matters relative to the start; pitch does not. Turning the mouse sideways while looking 40 degrees down
sweeps the view along a cone, not along the horizon, and a step forward goes down into the picture: a walk that
assumes the start is level puts every point the world memory keeps in the wrong place, and tells the network
the wrong steps. Half the starts of our recorded plays look more than 15 degrees up or down.

The horizon, the sky and the way the ground's blocks shrink with distance say where the camera looks. This
small network reads it: four stride-2 convolutions, a channel that says each pixel's row (where the horizon
sits is the signal, so position must survive), and a head on the flattened last map. It costs a fraction of a
millisecond, once, when a play starts.

    estimator = PitchEstimator.from_pretrained(PATH / "pitch")
    degrees = estimator.estimate(images)   # uint8 (B, H, W, 3) -> float32 (B,), +pitch looks up
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from data.physics import PITCH_LIMIT
from worldmodel.autoencoder import to_model_range
from worldmodel.config import PitchConfig
from worldmodel.weights import load_weights, read_config, save_model_folder


class PitchEstimator(nn.Module):
    def __init__(self, cfg: PitchConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        channels = [4, w, 2 * w, 4 * w, 4 * w]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(1, c_out), nn.SiLU()]
        self.convs = nn.Sequential(*layers)
        cells = (cfg.image_size // 16) ** 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * cells, 64), nn.SiLU(), nn.Linear(64, 1))
        rows = torch.linspace(-1.0, 1.0, cfg.image_size)
        self.register_buffer("rows", rows[None, None, :, None].expand(1, 1, -1, cfg.image_size).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, H, W) in [-1, 1] -> pitch in degrees (B,), within the game's limits."""
        rows = self.rows.expand(x.shape[0], 1, -1, -1)
        out = self.head(self.convs(torch.cat([x, rows], dim=1)))[:, 0]
        return PITCH_LIMIT * torch.tanh(out / 2)  # ~2x degrees/89 near level: a gentle start for the regression

    @torch.no_grad()
    def estimate(self, images: np.ndarray) -> np.ndarray:
        """uint8 frames (B, H, W, 3) -> float32 pitch in degrees (B,)."""
        images = np.asarray(images)
        size = self.cfg.image_size
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (size, size, 3):
            raise ValueError(f"the pitch estimator reads uint8 (B, {size}, {size}, 3) frames, got {images.dtype} {images.shape}")
        device = self.rows.device
        x = to_model_range(torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).to(device))  # a copy: may be read-only
        return self(x).float().cpu().numpy()

    def save_pretrained(self, folder: str | Path) -> None:
        """FOLDER/config.json + FOLDER/model.safetensors."""
        save_model_folder(Path(folder), self.cfg, self)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> PitchEstimator:
        folder = Path(folder)
        estimator = cls(read_config(PitchConfig, folder))
        load_weights(estimator, folder / "model.safetensors")
        return estimator.eval()
