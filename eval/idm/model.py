"""The inverse dynamics model (IDM): which keys and mouse moves turned each frame into the next?

GameWorld Score judges keyboard and mouse accuracy with OpenAI's VPT IDM (a 0.5B-parameter model trained on
Minecraft videos, 128x128, 128-frame windows). Its weights cannot be downloaded here and it has never seen
our world, so we train our own small IDM on clips of our simulator, where the actions are known exactly and
visible: walking moves the view, a jump lifts it, attack and use swing the hand, sneaking lowers the eye and
sprinting widens the field of view.

Model (about 0.55M parameters, 2.2 MB; 64x64 input, any length T >= 2), small enough to train in minutes
on one CPU thread:
- a per-frame trunk (two stride-2 3x3 convolutions on the frame halved to 32x32) -> feature maps (32, 8, 8);
  average-pooled to 4x4 it is also the frame embedding that temporal consistency uses (eval/temporal.py);
- a pair network on the change of the trunk maps between the two frames (next minus previous) plus the dense
  optical flow between them (OpenCV DIS at 64x64, averaged over 8x8 blocks): one stride-2 convolution and a
  linear layer -> one vector per transition. It sees the change only, never the look of the world: a
  still transition gives the same input in every world, so the model cannot learn "this beach means
  forward" from the training worlds. The flow hands it camera turns, steps and jumps directly; the change
  of the trunk maps shows the hand swing and bob, the eye height and the field of view easing;
- a bidirectional GRU over the transitions, so each one reads the whole clip: a held jump while looking at
  the sky, a step against a wall or a turn held against the pitch limit are only readable from context;
- heads: forward/back (3 classes: none, forward, back), left/right (3), pitch and yaw direction (3 each:
  none, +, -), the binary keys jump, attack, use, sprint, sneak, and a camera regression in degrees.

Time alignment (docs/ARCHITECTURE.md): actions[t] turns frames[t] into frames[t + 1], so a video of T frames
gives T - 1 predictions, one per transition.

It reads a video into the label encoding of eval/labels.py. Training: eval/idm/train.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from data.files import atomic_path, write_text_atomic
from eval.labels import BINARY_KEYS, PredictedActions

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "assets" / "idm"
CONFIG_KIND = "worldmodel-idm"  # config.json's "kind": what marks a folder as an IDM


@dataclass(frozen=True)
class IDMConfig:
    size: int = 64  # frames are resized to this first (flow is computed here), then halved for the trunk
    trunk_channels: tuple[int, int] = (16, 32)
    pair_channels: int = 64
    hidden: int = 96  # per direction of the bidirectional GRU
    # stacked: one layer (keyboard 0.951, mouse 0.998 on the suite) did about as well, held-out a little worse
    gru_layers: int = 2
    embed_grid: int = 4  # frame embedding: trunk features average-pooled to embed_grid x embed_grid
    # What the pair network sees of the two frames' trunk maps: "difference" (next minus previous: a still
    # video gives the same input in every world, so the scene's look cannot be read as an action) or
    # "both" (the two maps side by side; checkpoints made before the difference input).
    pair_input: str = "difference"

    def __post_init__(self) -> None:
        object.__setattr__(self, "trunk_channels", tuple(self.trunk_channels))
        if self.pair_input not in ("difference", "both"):
            raise ValueError(f"IDMConfig.pair_input must be 'difference' or 'both', got {self.pair_input!r}")
        if self.size != 64:
            raise ValueError(f"IDMConfig.size must be 64 (frames are resized to it), got {self.size}")
        if len(self.trunk_channels) != 2:
            raise ValueError(f"IDMConfig needs 2 trunk_channels, got {self.trunk_channels}")
        if min(self.trunk_channels + (self.pair_channels, self.hidden)) < 1:
            raise ValueError("IDMConfig channel counts and hidden must be positive")
        if self.gru_layers < 1:
            raise ValueError(f"IDMConfig.gru_layers must be positive, got {self.gru_layers}")
        if self.embed_grid < 1 or 8 % self.embed_grid:
            raise ValueError(f"IDMConfig.embed_grid must divide 8, got {self.embed_grid}")


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU())


class InverseDynamicsModel(nn.Module):
    def __init__(self, cfg: IDMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c1, c2 = cfg.trunk_channels
        self.trunk = nn.Sequential(_conv(3, c1, 2), _conv(c1, c2, 2))  # 32x32 frame -> (c2, 8, 8), every frame
        # Pair input at 8x8: the frames' trunk features (their difference, or both) and the optical flow (2 channels).
        pair_in = (c2 if cfg.pair_input == "difference" else 2 * c2) + 2
        self.pair = _conv(pair_in, cfg.pair_channels, 2)  # -> (pair_channels, 4, 4)
        self.pair_out = nn.Sequential(nn.Linear(cfg.pair_channels * 16, 2 * cfg.hidden), nn.ReLU())
        self.dropout = nn.Dropout(0.2)
        self.gru = nn.GRU(2 * cfg.hidden, cfg.hidden, cfg.gru_layers, batch_first=True, bidirectional=True)
        width = 4 * cfg.hidden  # the pair vector and the GRU's two directions
        # ModuleDict keys cannot be "keys" (a dict method), so the heads are named head_<output>.
        self.heads = nn.ModuleDict(
            {"head_fb": nn.Linear(width, 3), "head_lr": nn.Linear(width, 3), "head_pitch": nn.Linear(width, 3),
             "head_yaw": nn.Linear(width, 3), "head_keys": nn.Linear(width, len(BINARY_KEYS)),
             "head_camera": nn.Linear(width, 2)}
        )  # fmt: skip

    def trunk_features(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, T, 3, 64, 64) in [-1, 1] -> feature maps (B, T, C, 8, 8)."""
        b, t = frames.shape[:2]
        small = F.avg_pool2d(frames.flatten(0, 1), 2)  # 32x32: the hand, the horizon and the blocks still show
        return self.trunk(small).unflatten(0, (b, t))

    def frame_embedding(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, T, 3, 64, 64) -> non-negative embeddings (B, T, C * grid^2) for feature similarity."""
        maps = self.trunk_features(frames)
        pooled = F.adaptive_avg_pool2d(maps.flatten(0, 1), self.cfg.embed_grid)
        return pooled.flatten(1).unflatten(0, maps.shape[:2])

    def forward(self, frames: torch.Tensor, flow: torch.Tensor) -> dict[str, torch.Tensor]:
        """frames (B, T, 3, 64, 64) in [-1, 1], flow (B, T-1, 2, 8, 8) (pixels at 64x64) -> (B, T-1, ...)."""
        maps = self.trunk_features(frames)  # (B, T, C, 8, 8)
        if self.cfg.pair_input == "difference":
            change = [maps[:, 1:] - maps[:, :-1]]  # zero for a still transition, whatever the world looks like
        else:
            change = [maps[:, :-1], maps[:, 1:]]
        pairs = torch.cat([*change, flow], dim=2).flatten(0, 1)  # (B*(T-1), C or 2C, + 2, 8, 8)
        h = self.pair_out(self.pair(pairs).flatten(1))  # (B*(T-1), 2*hidden)
        h = h.unflatten(0, (frames.shape[0], frames.shape[1] - 1))  # (B, T-1, 2*hidden)
        h = self.dropout(h)  # against memorising whole action sequences of the training clips
        context, _ = self.gru(h)  # both directions: a held key reads from the frames before and after
        z = torch.cat([h, context], dim=-1)
        return {name.removeprefix("head_"): head(z) for name, head in self.heads.items()}

    def save_pretrained(self, out: str | Path, extra: dict | None = None) -> None:
        """Write out/model.safetensors and out/config.json (the config plus `extra`), each atomically."""
        from safetensors.torch import save_file

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "model.safetensors") as tmp:
            save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(tmp))
        config = {"kind": CONFIG_KIND, "config": asdict(self.cfg), **(extra or {})}
        write_text_atomic(out / "config.json", json.dumps(config, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> InverseDynamicsModel:
        """Load a trained IDM from a folder (config.json + model.safetensors); default assets/idm. In eval mode."""
        from safetensors.torch import load_file

        path = Path(path) if path is not None else DEFAULT_PATH
        config_path, weights_path = path / "config.json", path / "model.safetensors"
        for p in (config_path, weights_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: missing; train one with `python -m eval.idm train --out {path}`")
        raw = json.loads(config_path.read_text())
        if raw.get("kind") != CONFIG_KIND:
            raise ValueError(f"{config_path}: not an IDM config (kind={raw.get('kind')!r})")
        settings = {"pair_input": "both", **raw["config"]}  # checkpoints older than pair_input saw both maps
        model = cls(IDMConfig(**settings))
        model.load_state_dict(load_file(str(weights_path)))
        model.eval()
        return model


def clip_flow(frames: np.ndarray) -> torch.Tensor:
    """DIS flow between consecutive 64x64 frames (T, 64, 64, 3) -> (T-1, 2, 8, 8), block means in pixels."""
    from eval.flow import dis_flow

    out = []
    for a, b in zip(frames[:-1], frames[1:]):
        # In pixels, not scaled down: a step moves block edges by a pixel or less, and the network must not
        # be able to ignore that next to its (normalised) appearance features.
        flow = dis_flow(a, b).reshape(8, 8, 8, 8, 2).mean(axis=(1, 3))
        out.append(flow.transpose(2, 0, 1))
    return torch.from_numpy(np.ascontiguousarray(np.stack(out), dtype=np.float32))


def frames_to_tensor(frames: np.ndarray, size: int = 64) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (1, T, 3, size, size) in [-1, 1]; other sizes and aspects centre-cropped and
    resized (data.frame_fit), never squashed."""
    from data.frame_fit import fit_frames

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames (T, H, W, 3), got shape {frames.shape}")
    frames = fit_frames(frames, size)
    x = torch.from_numpy(np.array(frames, dtype=np.uint8)).float().div(127.5).sub(1.0)  # a copy: memmaps are read-only
    return x.permute(0, 3, 1, 2).unsqueeze(0)


@torch.no_grad()
def predict(model: InverseDynamicsModel, frames: np.ndarray) -> PredictedActions:
    """The IDM's reading of a video (T, H, W, 3) uint8, T >= 2."""
    if len(frames) < 2:
        raise ValueError(f"the IDM needs at least 2 frames, got {len(frames)}")
    model.eval()
    x = frames_to_tensor(frames, model.cfg.size)
    small = ((x[0].permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8)
    out = model(x, clip_flow(small)[None])
    return PredictedActions(
        fb=out["fb"][0].argmax(-1).numpy(),
        lr=out["lr"][0].argmax(-1).numpy(),
        pitch=out["pitch"][0].argmax(-1).numpy(),
        yaw=out["yaw"][0].argmax(-1).numpy(),
        keys=(out["keys"][0] > 0).numpy().astype(np.int64),
        camera=out["camera"][0].numpy().astype(np.float64),
    )


@torch.no_grad()
def embed_frames(model: InverseDynamicsModel, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """Frame embeddings (T, D) float32 of a video (T, H, W, 3) uint8."""
    model.eval()
    x = frames_to_tensor(frames, model.cfg.size)
    parts = [model.frame_embedding(x[:, i : i + batch])[0] for i in range(0, x.shape[1], batch)]
    return torch.cat(parts).numpy()
