"""The inverse dynamics model (IDM): which keys and mouse moves turned each frame into the next?

GameWorld Score judges keyboard and mouse accuracy with OpenAI's VPT IDM (a 0.5B-parameter model trained on
Minecraft videos, 128x128, 128-frame windows). Its weights cannot be downloaded here and it has never seen
our world, so we train our own small IDM on clips of our simulator, where the actions are known exactly and
visible: walking moves the view, a jump lifts it, attack and use swing the hand, sneaking lowers the eye and
sprinting widens the field of view.

Model (about 0.2M parameters, 0.8 MB; 64x64 input, any length T >= 2), small enough to train in minutes
on two shared CPU cores:
- a per-frame trunk (two stride-2 3x3 convolutions on the frame halved to 32x32) -> feature maps (32, 8, 8);
  average-pooled to 4x4 it is also the frame embedding that temporal consistency uses (eval/temporal.py);
- a pair network on both frames' trunk maps plus the dense optical flow between the frames (OpenCV DIS at
  64x64, averaged over 8x8 blocks): one stride-2 convolution and a linear layer -> one vector per transition.
  The flow hands the network camera turns, steps and jumps directly; the trunk sees the hand swing, the eye
  height and the field of view;
- a bidirectional GRU over the transitions, so each one reads the whole clip: a held jump in mid-air, a step
  against a wall or a turn into the pitch limit are only readable from context;
- heads: forward/back (3 classes: none, forward, back), left/right (3), pitch and yaw direction (3 each:
  none, +, -), the binary keys jump, attack, use, sprint, sneak, and a camera regression in degrees.

Time alignment (docs/ARCHITECTURE.md): actions[t] turns frames[t] into frames[t + 1], so a video of T frames
gives T - 1 predictions, one per transition.

Training (`python -m eval.idm train --out assets/idm`, or `worldmodel eval --train-idm sim --out assets/idm`;
about 3 minutes of simulation and 9 of training on one CPU thread): clips are played in the simulator by two
players made for this. Random play (`random_actions`, 33-frame clips): every key and the camera change
often, in held segments of 2 to 48 frames, camera steps of 0.5 to 12 degrees on either axis, the view kept
off the pitch limits. Benchmark-like play (`benchmark_like_actions`, 65-frame clips): one action held for the
whole clip, drawn like the 76 benchmark actions (5 degrees a frame, attack in bursts), so the view also runs
into the pitch limit and stays there. Three clips in four are benchmark-like (the IDM mostly scores the
benchmark). Half the clips are blurred and/or noisy, since the IDM mostly judges a
world model's slightly blurry frames. Recorded clips can be added with --data.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from data.actions import KEY_INDEX, Action, stack

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "assets" / "idm"
BINARY_KEYS: tuple[str, ...] = ("jump", "attack", "use", "sprint", "sneak")
# The camera moved along an axis when |delta| > this many degrees: GameWorld's camera_direction threshold.
CAMERA_THRESHOLD_DEG = 1e-2


@dataclass(frozen=True)
class IDMConfig:
    size: int = 64  # frames are resized to this first (flow is computed here), then halved for the trunk
    trunk_channels: tuple[int, int] = (16, 32)
    pair_channels: int = 64
    hidden: int = 64  # per direction of the bidirectional GRU
    embed_grid: int = 4  # frame embedding: trunk features average-pooled to embed_grid x embed_grid

    def __post_init__(self) -> None:
        object.__setattr__(self, "trunk_channels", tuple(self.trunk_channels))
        if self.size != 64:
            raise ValueError(f"IDMConfig.size must be 64 (frames are resized to it), got {self.size}")
        if len(self.trunk_channels) != 2:
            raise ValueError(f"IDMConfig needs 2 trunk_channels, got {self.trunk_channels}")
        if min(self.trunk_channels + (self.pair_channels, self.hidden)) < 1:
            raise ValueError("IDMConfig channel counts and hidden must be positive")
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
        # Pair input at 8x8: both frames' trunk features and the optical flow between them (2 channels).
        self.pair = _conv(2 * c2 + 2, cfg.pair_channels, 2)  # -> (pair_channels, 4, 4)
        self.pair_out = nn.Sequential(nn.Linear(cfg.pair_channels * 16, 2 * cfg.hidden), nn.ReLU())
        self.dropout = nn.Dropout(0.2)
        self.gru = nn.GRU(2 * cfg.hidden, cfg.hidden, batch_first=True, bidirectional=True)
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
        pairs = torch.cat([maps[:, :-1], maps[:, 1:], flow], dim=2).flatten(0, 1)  # (B*(T-1), 2C+2, 8, 8)
        h = self.pair_out(self.pair(pairs).flatten(1))  # (B*(T-1), 2*hidden)
        h = h.unflatten(0, (frames.shape[0], frames.shape[1] - 1))  # (B, T-1, 2*hidden)
        h = self.dropout(h)  # against memorising whole action sequences of the training clips
        context, _ = self.gru(h)  # both directions: a held key reads from the frames before and after
        z = torch.cat([h, context], dim=-1)
        return {name.removeprefix("head_"): head(z) for name, head in self.heads.items()}


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


# ---------------------------------------------------------------- labels


def direction_class(values: np.ndarray, threshold: float = CAMERA_THRESHOLD_DEG) -> np.ndarray:
    """0 = still, 1 = positive, 2 = negative, per value."""
    values = np.asarray(values, np.float64)
    return np.where(values > threshold, 1, np.where(values < -threshold, 2, 0)).astype(np.int64)


def pair_class(keys: np.ndarray, first: str, second: str) -> np.ndarray:
    """GameWorld's exclusive 3-class task: 0 = neither (or both), 1 = first only, 2 = second only."""
    a = keys[:, KEY_INDEX[first]] > 0.5
    b = keys[:, KEY_INDEX[second]] > 0.5
    return np.where(a & ~b, 1, np.where(b & ~a, 2, 0)).astype(np.int64)


def labels_from_actions(keys: np.ndarray, camera: np.ndarray) -> dict[str, np.ndarray]:
    """Targets for each action row: keys (N, 9) multi-hot, camera (N, 2) degrees (pitch, yaw)."""
    return {
        "fb": pair_class(keys, "forward", "back"),
        "lr": pair_class(keys, "left", "right"),
        "pitch": direction_class(camera[:, 0]),
        "yaw": direction_class(camera[:, 1]),
        "keys": np.stack([keys[:, KEY_INDEX[k]] > 0.5 for k in BINARY_KEYS], 1).astype(np.float32),
        "camera": np.asarray(camera, np.float32),
    }


# ---------------------------------------------------------------- inference


def frames_to_tensor(frames: np.ndarray, size: int = 64) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (1, T, 3, size, size) in [-1, 1], resized with area averaging if needed."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames (T, H, W, 3), got shape {frames.shape}")
    if frames.shape[1:3] != (size, size):
        import cv2

        frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
    x = torch.from_numpy(np.array(frames, dtype=np.uint8)).float().div(127.5).sub(1.0)  # a copy: memmaps are read-only
    return x.permute(0, 3, 1, 2).unsqueeze(0)


@dataclass
class PredictedActions:
    """One prediction per transition (T - 1 of them), in the label encoding of `labels_from_actions`."""

    fb: np.ndarray
    lr: np.ndarray
    pitch: np.ndarray
    yaw: np.ndarray
    keys: np.ndarray  # (N, len(BINARY_KEYS)) 0/1
    camera: np.ndarray  # (N, 2) degrees

    def to_actions(self) -> list[Action]:
        out = []
        for i in range(len(self.fb)):
            held = {("forward", "back")[self.fb[i] - 1]} if self.fb[i] else set()
            if self.lr[i]:
                held.add(("left", "right")[self.lr[i] - 1])
            held |= {k for k, on in zip(BINARY_KEYS, self.keys[i]) if on}
            sign = {0: 0.0, 1: 1.0, 2: -1.0}
            cam = (sign[int(self.pitch[i])] * abs(self.camera[i, 0]), sign[int(self.yaw[i])] * abs(self.camera[i, 1]))
            out.append(Action(frozenset(held), (float(np.clip(cam[0], -180, 180)), float(np.clip(cam[1], -180, 180)))))
        return out


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


# ---------------------------------------------------------------- checkpoint


def save_idm(model: InverseDynamicsModel, out: str | Path, extra: dict | None = None) -> None:
    """Write out/config.json and out/model.safetensors, each atomically."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".model.safetensors.tmp"
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    os.replace(tmp, out / "model.safetensors")
    config = {"kind": "worldmodel-idm", "config": asdict(model.cfg), **(extra or {})}
    _write_text(out / "config.json", json.dumps(config, indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def load_idm(path: str | Path | None = None) -> InverseDynamicsModel:
    """Load a trained IDM from a folder (config.json + model.safetensors); default assets/idm."""
    from safetensors.torch import load_file

    path = Path(path) if path is not None else DEFAULT_PATH
    config_path, weights_path = path / "config.json", path / "model.safetensors"
    for p in (config_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing; train one with `python -m eval.idm train --out {path}`")
    raw = json.loads(config_path.read_text())
    if raw.get("kind") != "worldmodel-idm":
        raise ValueError(f"{config_path}: not an IDM config (kind={raw.get('kind')!r})")
    model = InverseDynamicsModel(IDMConfig(**raw["config"]))
    model.load_state_dict(load_file(str(weights_path)))
    model.eval()
    return model


# ---------------------------------------------------------------- training data


PITCH_RANGE = (-50.0, 35.0)


def random_actions(rng: np.random.Generator, n: int) -> list[Action]:
    """A random player for IDM training: keys and camera held in segments of 1 to 40 frames."""
    actions: list[Action] = []
    state: dict[str, object] = {}
    timers: dict[str, int] = {}

    def segment() -> int:
        return int(rng.choice([2, 4, 6, 8, 12, 16, 24, 32, 48]))

    pitch = 0.0  # where the view points; kept between PITCH_RANGE so the view never sits in the plain sky
    for _ in range(n):
        for group in ("fb", "lr", "jump", "attack", "use", "sprint", "sneak", "cam"):
            if timers.get(group, 0) <= 0:
                timers[group] = segment()
                if group == "fb":
                    state[group] = rng.choice(["", "forward", "back", "forward"], p=[0.35, 0.3, 0.15, 0.2])
                elif group == "lr":
                    state[group] = rng.choice(["", "left", "right"], p=[0.5, 0.25, 0.25])
                elif group == "cam":
                    cam = [0.0, 0.0]
                    for axis, p_move in ((0, 0.35), (1, 0.5)):
                        if rng.random() < p_move:
                            cam[axis] = float(rng.choice([-1, 1]) * math.exp(rng.uniform(math.log(0.5), math.log(12.0))))
                    state[group] = tuple(cam)
                else:
                    p_on = {"jump": 0.3, "attack": 0.3, "use": 0.1, "sprint": 0.2, "sneak": 0.15}[group]
                    state[group] = bool(rng.random() < p_on)
            timers[group] -= 1
        cam = state["cam"]
        if not PITCH_RANGE[0] <= pitch + cam[0] <= PITCH_RANGE[1]:  # type: ignore[index]
            cam = (-cam[0], cam[1])  # type: ignore[index]
            state["cam"] = cam
        pitch += cam[0]  # type: ignore[index]
        keys = {k for k in (state["fb"], state["lr"]) if k}
        keys |= {k for k in ("jump", "attack", "use", "sprint", "sneak") if state[k]}
        actions.append(Action(frozenset(keys), cam))  # type: ignore[arg-type]
    return actions


def benchmark_like_actions(rng: np.random.Generator, n: int) -> list[Action]:
    """One action held for the whole clip, drawn like GameWorld's 76 (keys, key pairs, key + camera turns).

    The camera turns CAMERA_DEG a frame as in the benchmark, so the view also runs into the pitch limit and
    stays there; attack is pressed in the benchmark's bursts (held on 8 frames of every 16, random phase).
    """
    from data.benchmark_actions import CAMERA_DEG, CAMERA_MOVES, KEY_PAIRS, SINGLE_KEYS

    kind = rng.choice(["key", "camera", "pair", "key_camera", "empty"], p=[0.15, 0.15, 0.2, 0.45, 0.05])
    keys: tuple[str, ...] = ()
    direction = (0.0, 0.0)
    if kind in ("key", "key_camera"):
        keys = (str(rng.choice(SINGLE_KEYS)),)
    if kind == "pair":
        keys = tuple(KEY_PAIRS[int(rng.integers(len(KEY_PAIRS)))])
    if kind in ("camera", "key_camera"):
        direction = list(CAMERA_MOVES.values())[int(rng.integers(len(CAMERA_MOVES)))]
    phase = int(rng.integers(16))
    camera = (direction[0] * CAMERA_DEG, direction[1] * CAMERA_DEG)
    return [
        Action(frozenset(k for k in keys if k != "attack" or (t + phase) % 16 >= 8), camera) for t in range(n)
    ]


def simulate_clip(seed: int, length: int, player: str = "random") -> tuple[np.ndarray, list[Action]]:
    """Play `random_actions` (or `benchmark_like_actions`) in a fresh world: frames (length, 64, 64, 3), actions."""
    from data.game import Game

    rng = np.random.default_rng(seed)
    make = {"random": random_actions, "benchmark": benchmark_like_actions}[player]
    actions = make(rng, length)
    game = Game(seed, size=64)
    frames = [game.reset()]
    for act in actions[:-1]:
        frames.append(game.step(act))
    return np.stack(frames), actions


def degrade(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild blur and/or noise for one clip (the same for every frame), like a world model's output."""
    import cv2

    out = frames.astype(np.float32)
    if rng.random() < 0.5:
        sigma = float(rng.uniform(0.4, 1.0))
        out = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in out])
    if rng.random() < 0.5:
        out = out + rng.normal(0.0, float(rng.uniform(1.0, 8.0)), out.shape)
    return np.clip(out, 0, 255).round().astype(np.uint8)


@dataclass
class IDMClip:
    frames: np.ndarray  # (T, 64, 64, 3) uint8
    keys: np.ndarray  # (T, 9)
    camera: np.ndarray  # (T, 2)
    flow: torch.Tensor  # (T-1, 2, 32, 32), from clip_flow


def make_clip(frames: np.ndarray, actions: list[Action]) -> IDMClip:
    keys, camera = stack(actions)
    return IDMClip(frames, keys, camera, clip_flow(frames))


TEST_LENGTH = 65  # held-out clips are as long as the benchmark's videos


@dataclass(frozen=True)
class TrainConfig:
    minutes: float = 9.0
    random_length: int = 33  # random play: short clips from many worlds (65-frame clips from 400 worlds were memorised)
    benchmark_length: int = 65  # benchmark-like: whole benchmark-length clips, so the GRU learns to carry context
    batch: int = 8  # whole clips of one kind per batch
    lr: float = 3e-3
    seed: int = 0
    train_clips: int = 800
    benchmark_share: float = 0.75  # of the clips (and of the batches), held actions like the benchmark's
    degrade_share: float = 0.5  # of the clips, blurred and/or noisy
    test_clips: int = 40
    test_seed_offset: int = 1_000_000  # held-out worlds: seeds never used for training
    model: IDMConfig = field(default_factory=IDMConfig)

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")
        if min(self.random_length, self.benchmark_length) < 4:
            raise ValueError("random_length and benchmark_length must be at least 4 frames")
        if self.train_clips < 2 or self.test_clips < 1 or self.batch < 1:
            raise ValueError("train_clips (>= 2), test_clips and batch must be positive")
        if not 0 < self.benchmark_share < 1 or not 0 <= self.degrade_share <= 1:
            raise ValueError("benchmark_share must be within (0, 1) and degrade_share within [0, 1]")


def _loss(out: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
    loss = sum(F.cross_entropy(out[k].flatten(0, 1), target[k].flatten()) for k in ("fb", "lr", "pitch", "yaw"))
    loss = loss + F.binary_cross_entropy_with_logits(out["keys"], target["keys"]) * len(BINARY_KEYS)
    loss = loss + 0.02 * F.smooth_l1_loss(out["camera"], target["camera"])
    return loss


def simulated_clips(
    seeds: list[int], length: int, player: str, degrade_share: float = 0.0, progress: bool = True
) -> list[IDMClip]:
    """Simulated clips for training or testing; a share of them degraded (decided by the seed)."""
    from tqdm import tqdm

    clips = []
    for seed in tqdm(seeds, desc=f"simulating {player} clips", disable=not progress):
        frames, actions = simulate_clip(seed, length, player)
        rng = np.random.default_rng([seed, 7])
        if rng.random() < degrade_share:
            frames = degrade(frames, rng)
        clips.append(make_clip(frames, actions))
    return clips


def clips_from_folder(root: str | Path, limit: int | None = None, length: int = 65) -> list[IDMClip]:
    """Recorded clips (data/clips.py), cut into pieces of `length` frames, resized to 64x64 if needed."""
    import cv2

    from data.clips import find_clips, read_clip

    out = []
    for stem in find_clips(root):
        clip = read_clip(stem)
        for t0 in range(0, len(clip.frames) - length + 1, length):
            frames = np.asarray(clip.frames[t0 : t0 + length])
            if frames.shape[1:3] != (64, 64):
                frames = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in frames])
            out.append(make_clip(frames, clip.actions[t0 : t0 + length]))
            if limit is not None and len(out) >= limit:
                return out
    return out


def accuracy(model: InverseDynamicsModel, clips: list[IDMClip]) -> dict[str, float]:
    """GameWorld keyboard and mouse accuracy of the IDM on true clips (eval/controllability.py's scoring)."""
    from eval.controllability import score_predictions

    preds, labels = [], []
    for clip in clips:
        preds.append(predict(model, clip.frames))
        labels.append(labels_from_actions(clip.keys[:-1], clip.camera[:-1]))
    return score_predictions(preds, labels)


def _batch(pool: list[IDMClip], rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """`size` whole clips drawn from one pool (all of one length)."""
    xs, flows, targets = [], [], {k: [] for k in ("fb", "lr", "pitch", "yaw", "keys", "camera")}
    for _ in range(size):
        clip = pool[int(rng.integers(len(pool)))]
        xs.append(frames_to_tensor(clip.frames)[0])
        flows.append(clip.flow)
        lab = labels_from_actions(clip.keys[:-1], clip.camera[:-1])
        for k in targets:
            targets[k].append(torch.from_numpy(lab[k]))
    return torch.stack(xs), torch.stack(flows), {k: torch.stack(v) for k, v in targets.items()}


def train_idm(cfg: TrainConfig, out: str | Path, data: str | Path | None = None, progress: bool = True) -> dict:
    """Train an IDM for cfg.minutes of wall time and save it to `out`; returns the held-out accuracies."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    n_bench = int(round(cfg.train_clips * cfg.benchmark_share))
    base = cfg.seed * 100_000
    random_pool = simulated_clips([base + i for i in range(cfg.train_clips - n_bench)], cfg.random_length, "random", cfg.degrade_share, progress)
    bench_pool = simulated_clips([base + 50_000 + i for i in range(n_bench)], cfg.benchmark_length, "benchmark", cfg.degrade_share, progress)
    source = (
        f"{len(random_pool)} simulated random-play clips of {cfg.random_length} frames and {n_bench} benchmark-like "
        f"clips of {cfg.benchmark_length} frames"
    )
    if data is not None:
        recorded = clips_from_folder(data, length=cfg.random_length)
        random_pool += recorded
        source += f" + {len(recorded)} pieces of recorded clips under {data}"
    tests = {
        "random_play": simulated_clips([cfg.test_seed_offset + i for i in range(cfg.test_clips)], TEST_LENGTH, "random", 0.0, progress),
        "benchmark_like": simulated_clips([cfg.test_seed_offset + 50_000 + i for i in range(cfg.test_clips)], TEST_LENGTH, "benchmark", 0.0, progress),
    }
    model = InverseDynamicsModel(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-3)
    rng = np.random.default_rng(cfg.seed)
    budget = cfg.minutes * 60
    steps, losses = 0, []
    bar = tqdm(total=int(budget), desc="training IDM (s)", disable=not progress, unit="s")
    start = time.monotonic()
    model.train()
    while (elapsed := time.monotonic() - start) < budget:
        # Cosine decay on the wall-clock fraction, since we train for a time budget, not a step count.
        for group in opt.param_groups:
            group["lr"] = cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * elapsed / budget)))
        pool = bench_pool if rng.random() < cfg.benchmark_share else random_pool
        x, flow, target = _batch(pool, rng, cfg.batch)
        loss = _loss(model(x, flow), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        losses.append(float(loss))
        bar.n = min(int(elapsed), bar.total)
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", steps=steps)
    bar.close()
    model.eval()
    held_out = {name: {"clips": len(clips), **accuracy(model, clips)} for name, clips in tests.items()}
    info = {
        "trained_on": source,
        "steps": steps,
        "minutes": cfg.minutes,
        "final_loss": float(np.mean(losses[-50:])),
        "held_out": held_out,
        "train_config": {k: v for k, v in asdict(cfg).items() if k != "model"},
    }
    save_idm(model, out, {"training": info})
    write_model_card(Path(out), info, sum(p.numel() for p in model.parameters()))
    return info


def write_model_card(out: Path, info: dict, parameters: int) -> None:
    """OUT/MODEL_CARD.md: what the IDM is, what it was trained on, and how well it reads held-out true clips."""
    rows = "\n".join(
        f"| {name} | {r['clips']} | {r['keyboard']:.4f} | {r['mouse']:.4f} | "
        f"{r['acc_fb']:.3f} | {r['acc_lr']:.3f} | {r['acc_attack']:.3f} | {r['acc_jump']:.3f} |"
        for name, r in info["held_out"].items()
    )
    text = f"""# Inverse dynamics model (worldmodel eval)

Reads, from a video of our voxel world, which keys and mouse moves turned each frame into the next. Used by
`worldmodel eval` for keyboard and mouse accuracy (GameWorld Score's action controllability) and, through its
per-frame trunk, for temporal consistency. Architecture and training: `eval/idm.py`; scoring:
`eval/controllability.py`; the whole evaluator: `docs/EVAL.md`.

- Parameters: {parameters:,} (float32, `model.safetensors`); input 64x64 RGB frames, any clip length >= 2.
- Outputs per transition: forward/back and left/right (3 classes each), pitch and yaw direction (3 classes
  each, moving above 0.01 degrees), jump, attack, use, sprint, sneak (binary), camera delta in degrees.
- Trained on: {info['trained_on']}; {info['steps']} steps in {info['minutes']} minutes on one CPU thread
  (final loss {info['final_loss']:.3f}). Its worlds' seeds are disjoint from the 32 benchmark scenes' (1000-8003).
- Retrain: `python -m eval.idm train --out assets/idm` (or `worldmodel eval --train-idm sim --out assets/idm`).

## Held-out accuracy (simulator's true clips, unseen seeds, GameWorld scoring)

| clips | n | keyboard | mouse | forward/back | left/right | attack | jump |
|---|---|---|---|---|---|---|---|
{rows}

random_play: keys and camera held in random segments (the training player on new worlds).
benchmark_like: one action held for the whole clip, like the 76 benchmark actions.
The score on the benchmark itself (32 scenes x 76 actions, the simulator's videos) is the keyboard and
mouse column of `worldmodel eval --ground-truth` (docs/EVAL.md).

## Limits
It was trained on this simulator only: it reads this world's cues (the hand swing, the eye height, the
field of view, the flow of block edges) and is not a Minecraft IDM. What no frame shows (a step into a
wall, a jump key held in mid-air, a turn while looking at the plain sky or held against the pitch limit)
it reads from context, i.e. it assumes an action persists; a model that freezes in such a view gets the
benefit of that assumption.
"""
    _write_text(out / "MODEL_CARD.md", text)


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    train = sub.add_parser("train", help="train an IDM on simulated (or recorded) clips")
    train.add_argument("--out", type=Path, default=DEFAULT_PATH, help="checkpoint folder to write")
    train.add_argument("--data", type=Path, default=None, help="recorded clips to add to the simulated ones")
    train.add_argument("--minutes", type=float, default=9.0, help="wall-clock training budget")
    train.add_argument("--clips", type=int, default=800, help="simulated training clips")
    train.add_argument("--benchmark-share", type=float, default=0.75, help="share of benchmark-like clips")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 trains fastest on a busy machine)")
    test = sub.add_parser("test", help="score a trained IDM on held-out true clips")
    test.add_argument("--model", type=Path, default=DEFAULT_PATH)
    test.add_argument("--data", type=Path, default=None, help="recorded clips folder (default: simulate)")
    test.add_argument("--clips", type=int, default=40)
    test.add_argument(
        "--player", choices=("random", "benchmark", "suite"), default="random",
        help="simulated test clips: random play, benchmark-like, or the benchmark itself (--scenes x 76 actions)",
    )
    test.add_argument("--scenes", type=int, default=8, help="with --player suite: start scenes (one per biome first)")
    test.add_argument("--threads", type=int, default=2)


def main(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    if args.action == "train":
        cfg = TrainConfig(minutes=args.minutes, train_clips=args.clips, seed=args.seed, benchmark_share=args.benchmark_share)
        info = train_idm(cfg, args.out, args.data)
        print(json.dumps(info["held_out"], indent=2))
        return 0
    model = load_idm(args.model)
    if args.data is not None:
        clips = clips_from_folder(args.data, args.clips)
    elif args.player == "suite":
        from eval.suite import SuiteConfig, make_jobs, simulate

        jobs = [j for j in make_jobs(SuiteConfig(scenes=args.scenes)) if j.kind == "benchmark"]
        clips = [make_clip(simulate(j).frames, list(j.actions)) for j in jobs]
    else:
        first = TrainConfig().test_seed_offset + 500 + (50_000 if args.player == "benchmark" else 0)
        clips = simulated_clips([first + i for i in range(args.clips)], 65, args.player)
    print(json.dumps(accuracy(model, clips), indent=2))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m eval.idm", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
