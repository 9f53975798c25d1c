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

Training (`python -m eval.idm train --out assets/idm`, or `worldmodel eval --train-idm sim --out assets/idm`;
20 minutes of wall time on one CPU thread, simulating and training together, then about 2 minutes of
scoring): the clips are simulated while training, not drawn from a fixed set. Between training steps
(45% of the time) fresh worlds are generated, every biome equally often, and four clips played in each,
each from its own start made like the benchmark scenes' (data/scenes.py: a spawn point, pitch -5, turned
to an open view); a pool of the latest 1200 clips feeds the batches, so the model meets thousands of
worlds (a few hundred fixed worlds were memorised: a still video read as "forward" on one beach). Two
players made for this: benchmark-like play (`benchmark_like_actions`, 65-frame clips): one action held
for the whole clip, drawn like the 76 benchmark actions (5 degrees a frame, attack in bursts), so the
view also runs into the pitch limit and stays there; and random play (`random_actions`, 33-frame clips):
every key and the camera change often, in held segments of 2 to 48 frames, camera steps of 0.5 to 12
degrees on either axis, the view kept off the pitch limits. 85% of the clips are benchmark-like (the
IDM mostly scores the benchmark). Half the clips are blurred and/or noisy, since the IDM mostly judges
a world model's slightly blurry frames. Training worlds' seeds (10,000 + 90,000 x seed + i) are disjoint
from the 32 benchmark scenes' (1000-8003) and the held-out worlds' (from 1,000,000). Recorded clips can
be added with --data.

Continuing (`--init DIR`): a run can start from a trained IDM of the same architecture, on a fresh block of
worlds (`--seed`), often with a lower peak rate (`--lr`) and more benchmark-like clips that hold a key while
the camera turns (`--key-camera-share`; walking or strafing while the view pitches up into the sky is what
the IDM misses most). The shipped IDM is such a chain of runs; its MODEL_CARD.md lists each run's command
and its suite figures, and config.json records them under training.earlier_runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from data.actions import KEY_INDEX, Action, stack

if TYPE_CHECKING:
    from data.physics import Pose
    from data.world import World

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "assets" / "idm"
BINARY_KEYS: tuple[str, ...] = ("jump", "attack", "use", "sprint", "sneak")
# The camera moved along an axis when |delta| > this many degrees: GameWorld's camera_direction threshold.
CAMERA_THRESHOLD_DEG = 1e-2


@dataclass(frozen=True)
class IDMConfig:
    size: int = 64  # frames are resized to this first (flow is computed here), then halved for the trunk
    trunk_channels: tuple[int, int] = (16, 32)
    pair_channels: int = 64
    hidden: int = 96  # per direction of the bidirectional GRU
    gru_layers: int = 2  # stacked: one layer (keyboard 0.951, mouse 0.998 on the suite) did about as well, held-out a little worse
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
    settings = {"pair_input": "both", **raw["config"]}  # checkpoints older than pair_input saw both maps
    model = InverseDynamicsModel(IDMConfig(**settings))
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


KEY_CAMERA_SHARE = 0.45  # benchmark-like clips that hold a key and turn the camera (the benchmark: 48 of 76)


def benchmark_like_actions(rng: np.random.Generator, n: int, key_camera_share: float = KEY_CAMERA_SHARE) -> list[Action]:
    """One action held for the whole clip, drawn like GameWorld's 76 (keys, key pairs, key + camera turns).

    The camera turns CAMERA_DEG a frame as in the benchmark, so the view also runs into the pitch limit and
    stays there; attack is pressed in the benchmark's bursts (held on 8 frames of every 16, random phase).
    key_camera_share of the clips hold a key and turn the camera; the other kinds keep their proportions.
    """
    from data.benchmark_actions import CAMERA_DEG, CAMERA_MOVES, KEY_PAIRS, SINGLE_KEYS

    # Closer to the benchmark's own mix (6 keys, 8 camera moves, 13 pairs, 48 key + camera, 1 empty of 76) did
    # worse on it (keyboard 0.946 against 0.951): the single keys and pairs teach the walking cues best.
    if not 0 <= key_camera_share <= 1:
        raise ValueError(f"key_camera_share must be within [0, 1], got {key_camera_share}")
    rest = (1 - key_camera_share) / (1 - KEY_CAMERA_SHARE)
    p = [0.15 * rest, 0.15 * rest, 0.2 * rest, key_camera_share, 0.05 * rest]
    kind = rng.choice(["key", "camera", "pair", "key_camera", "empty"], p=np.array(p) / sum(p))
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


def scene_like_start(world: World, rng: np.random.Generator) -> Pose:
    """A start like the benchmark scenes' (data/scenes.py), in any world: a spawn point, looking slightly down
    (START_PITCH), turned from a random heading to the first direction with OPEN_DISTANCE blocks of free view."""
    from data.physics import EYE_HEIGHT, Pose
    from data.render import raycast_block
    from data.scenes import OPEN_DISTANCE, START_PITCH, TURNS

    x, y, z = world.spawn_point(rng)
    eye = (x, y + EYE_HEIGHT, z)
    heading = float(rng.integers(8)) * 45.0
    for turn in TURNS:
        yaw = (heading + turn) % 360.0
        if all(raycast_block(world, eye, yaw, pitch, OPEN_DISTANCE) is None for pitch in (0.0, START_PITCH)):
            return Pose(x, y, z, yaw, START_PITCH)
    return Pose(x, y, z, heading, START_PITCH)


PLAYERS = {"random": random_actions, "benchmark": benchmark_like_actions}


def simulate_world(
    seed: int, clips: int, length: int, player: str = "random", key_camera_share: float = KEY_CAMERA_SHARE
) -> list[tuple[np.ndarray, list[Action]]]:
    """`clips` clips of `player` in one fresh world (its biome drawn from the seed, every biome equally often),
    each from its own benchmark-like start: [(frames (length, 64, 64, 3), actions)]. key_camera_share: the
    benchmark-like player's share of key + camera clips."""
    from data.game import Game
    from data.terrain import BIOMES

    if player not in PLAYERS:
        raise ValueError(f"unknown player {player!r}; choose one of {', '.join(PLAYERS)}")
    rng = np.random.default_rng(seed)
    game = Game(seed, str(BIOMES[int(rng.integers(len(BIOMES)))]), size=64)
    out = []
    for _ in range(clips):
        game.start_pose = scene_like_start(game.world, rng)  # reset() puts the player here, edits undone
        if player == "benchmark":
            actions = benchmark_like_actions(rng, length, key_camera_share)
        else:
            actions = PLAYERS[player](rng, length)
        frames = [game.reset()] + [game.step(act) for act in actions[:-1]]
        out.append((np.stack(frames), actions))
    return out


def simulate_clip(seed: int, length: int, player: str = "random") -> tuple[np.ndarray, list[Action]]:
    """One clip of `player` in a fresh world: frames (length, 64, 64, 3), actions."""
    return simulate_world(seed, 1, length, player)[0]


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
TRAIN_SEED_BASE = 10_000  # training worlds: 10_000 + 90_000 * seed + i, clear of the scenes' 1000-8003
WORLDS_PER_SEED = 90_000  # seed 9 ends below the held-out worlds (1,000,000)


@dataclass(frozen=True)
class TrainConfig:
    minutes: float = 20.0  # wall-clock budget for simulating and training together
    random_length: int = 33  # random play: short clips
    benchmark_length: int = 65  # benchmark-like: whole benchmark-length clips, so the GRU learns to carry context
    batch: int = 8  # whole clips of one kind per batch
    lr: float = 3e-3
    seed: int = 0  # 0..9: which block of training worlds, and the initialisation
    pool_clips: int = 1200  # clips held at once; fresh ones push out the oldest of their kind
    clips_per_world: int = 4  # each from its own spawn point and heading (a world costs as much as 4 clips)
    simulate_share: float = 0.45  # of the wall time spent simulating fresh clips, between training steps
    warmup_clips: int = 160  # simulated before the first step
    benchmark_share: float = 0.85  # of the clips (and of the batches), held actions like the benchmark's
    degrade_share: float = 0.5  # of the clips, blurred and/or noisy
    key_camera_share: float = KEY_CAMERA_SHARE  # of the benchmark-like clips, a key held while the camera turns
    # A trained IDM folder to start from (same architecture), or "" for a fresh initialisation; its own
    # training (a chain of runs) is recorded in the new checkpoint's config.json and model card.
    init: str = ""
    test_clips: int = 40
    test_seed_offset: int = 1_000_000  # held-out worlds: seeds never used for training
    suite_scenes: int = 8  # after training, also score the benchmark itself (scenes x 76 actions); 0: skip
    model: IDMConfig = field(default_factory=IDMConfig)

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")
        if min(self.random_length, self.benchmark_length) < 4:
            raise ValueError("random_length and benchmark_length must be at least 4 frames")
        if self.pool_clips < 2 * self.clips_per_world or self.clips_per_world < 1:
            raise ValueError("pool_clips must hold at least two worlds' clips, and clips_per_world must be positive")
        if self.test_clips < 1 or self.batch < 1 or self.warmup_clips < 1:
            raise ValueError("test_clips, batch and warmup_clips must be positive")
        if not 0 < self.benchmark_share < 1 or not 0 <= self.degrade_share <= 1:
            raise ValueError("benchmark_share must be within (0, 1) and degrade_share within [0, 1]")
        if not 0 <= self.key_camera_share <= 1:
            raise ValueError(f"key_camera_share must be within [0, 1], got {self.key_camera_share}")
        if not 0 < self.simulate_share < 1:
            raise ValueError(f"simulate_share must be within (0, 1), got {self.simulate_share}")
        if not 0 <= self.suite_scenes <= 32:
            raise ValueError(f"suite_scenes must be 0..32, got {self.suite_scenes}")
        if not 0 <= self.seed < 10:
            raise ValueError(f"seed must be 0..9 (training worlds stay below the held-out seeds), got {self.seed}")


def _loss(out: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
    loss = sum(F.cross_entropy(out[k].flatten(0, 1), target[k].flatten()) for k in ("fb", "lr", "pitch", "yaw"))
    loss = loss + F.binary_cross_entropy_with_logits(out["keys"], target["keys"]) * len(BINARY_KEYS)
    loss = loss + 0.02 * F.smooth_l1_loss(out["camera"], target["camera"])
    return loss


def world_clips(
    seed: int, clips: int, length: int, player: str, degrade_share: float = 0.0,
    key_camera_share: float = KEY_CAMERA_SHARE,
) -> list[IDMClip]:
    """`simulate_world`'s clips, a share of them degraded (decided by the seed), with their flow."""
    out = []
    for k, (frames, actions) in enumerate(simulate_world(seed, clips, length, player, key_camera_share)):
        rng = np.random.default_rng([seed, 7, k])
        if rng.random() < degrade_share:
            frames = degrade(frames, rng)
        out.append(make_clip(frames, actions))
    return out


def simulated_clips(
    seeds: list[int], length: int, player: str, degrade_share: float = 0.0, progress: bool = True
) -> list[IDMClip]:
    """One simulated clip per seed (a world each), for testing; a share of them degraded."""
    from tqdm import tqdm

    clips = []
    for seed in tqdm(seeds, desc=f"simulating {player} clips", disable=not progress):
        clips += world_clips(seed, 1, length, player, degrade_share)
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


def suite_clips(scenes: int) -> list[IDMClip]:
    """The simulator's own videos of the benchmark: `scenes` start scenes (one per biome first) x 76 actions."""
    from eval.suite import SuiteConfig, make_jobs, simulate

    jobs = [j for j in make_jobs(SuiteConfig(scenes=scenes)) if j.kind == "benchmark"]
    return [make_clip(simulate(j).frames, list(j.actions)) for j in jobs]


def accuracy(model: InverseDynamicsModel, clips: list[IDMClip]) -> dict[str, float]:
    """GameWorld keyboard and mouse accuracy of the IDM on true clips (eval/controllability.py's scoring)."""
    from eval.controllability import score_predictions

    preds, labels = [], []
    for clip in clips:
        preds.append(predict(model, clip.frames))
        labels.append(labels_from_actions(clip.keys[:-1], clip.camera[:-1]))
    return score_predictions(preds, labels)


def _batch(pool: Sequence[IDMClip], rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
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
    """Simulate and train for cfg.minutes of wall time, save the IDM to `out`; returns what it did and its
    held-out accuracies.

    The clips are not a fixed set: a pool of cfg.pool_clips is topped up with clips of fresh worlds between
    training steps (cfg.simulate_share of the time), the oldest of a kind making way, so the model keeps
    meeting new worlds instead of memorising what a few hundred of them look like.
    """
    from collections import deque

    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n_bench = int(round(cfg.pool_clips * cfg.benchmark_share))
    pools = {"benchmark": deque(maxlen=n_bench), "random": deque(maxlen=cfg.pool_clips - n_bench)}
    lengths = {"benchmark": cfg.benchmark_length, "random": cfg.random_length}
    recorded: list[IDMClip] = []
    if data is not None:
        recorded = clips_from_folder(data, length=cfg.random_length)
    model = InverseDynamicsModel(cfg.model)
    earlier: list[dict] = []  # the training runs the starting checkpoint went through, first run first
    if cfg.init:
        start_from = load_idm(cfg.init)
        if start_from.cfg != cfg.model:
            raise ValueError(f"{cfg.init}: its architecture {start_from.cfg} differs from the one asked for {cfg.model}")
        model.load_state_dict(start_from.state_dict())
        before = json.loads((Path(cfg.init) / "config.json").read_text()).get("training", {})
        earlier = before.get("earlier_runs", []) + [{k: before.get(k) for k in ("trained_on", "steps", "minutes", "train_config", "held_out")}]
    tests = {
        "random_play": simulated_clips([cfg.test_seed_offset + i for i in range(cfg.test_clips)], TEST_LENGTH, "random", 0.0, progress),
        "benchmark_like": simulated_clips([cfg.test_seed_offset + 50_000 + i for i in range(cfg.test_clips)], TEST_LENGTH, "benchmark", 0.0, progress),
    }
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-3)
    budget = cfg.minutes * 60
    counts = {"worlds": 0, "benchmark": 0, "random": 0}
    simulating = 0.0  # seconds spent simulating

    def simulate_one_world() -> None:
        nonlocal simulating
        if counts["worlds"] >= WORLDS_PER_SEED:
            raise RuntimeError(f"ran out of training worlds for seed {cfg.seed}; lower --minutes")
        began = time.monotonic()
        kind = "benchmark" if rng.random() < cfg.benchmark_share else "random"
        seed = TRAIN_SEED_BASE + WORLDS_PER_SEED * cfg.seed + counts["worlds"]
        fresh = world_clips(seed, cfg.clips_per_world, lengths[kind], kind, cfg.degrade_share, cfg.key_camera_share)
        pools[kind].extend(fresh)
        counts["worlds"] += 1
        counts[kind] += len(fresh)
        simulating += time.monotonic() - began

    start = time.monotonic()
    steps, losses = 0, []
    bar = tqdm(total=int(budget), desc="simulating + training IDM (s)", disable=not progress, unit="s")
    model.train()
    while (elapsed := time.monotonic() - start) < budget:
        have = len(pools["benchmark"]) + len(pools["random"])
        if have < cfg.warmup_clips or simulating < cfg.simulate_share * elapsed or not pools["benchmark"]:
            simulate_one_world()
            continue
        # Cosine decay on the wall-clock fraction, since we train for a time budget, not a step count.
        for group in opt.param_groups:
            group["lr"] = cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * elapsed / budget)))
        use_random = rng.random() >= cfg.benchmark_share and (pools["random"] or recorded)
        if use_random:
            pool = recorded if recorded and (not pools["random"] or rng.random() < 0.5) else pools["random"]
        else:
            pool = pools["benchmark"]
        x, flow, target = _batch(pool, rng, cfg.batch)
        loss = _loss(model(x, flow), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        losses.append(loss.item())
        bar.n = min(int(elapsed), bar.total)
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", steps=steps, worlds=counts["worlds"])
    bar.close()
    model.eval()
    pools.clear()  # the suite's clips need the memory
    if cfg.suite_scenes:
        tests["benchmark_suite"] = suite_clips(cfg.suite_scenes)
    held_out = {name: {"clips": len(clips), **accuracy(model, clips)} for name, clips in tests.items()}
    source = (
        f"{counts['benchmark']} benchmark-like clips of {cfg.benchmark_length} frames and {counts['random']} "
        f"random-play clips of {cfg.random_length} frames from {counts['worlds']} fresh worlds "
        f"({cfg.clips_per_world} starts each), simulated while training (at most {cfg.pool_clips} held at once)"
    )
    if recorded:
        source += f" + {len(recorded)} pieces of recorded clips under {data}"
    info = {
        "trained_on": source,
        "steps": steps,
        "minutes": cfg.minutes,
        "simulating_minutes": round(simulating / 60, 2),
        "final_loss": float(np.mean(losses[-50:])) if losses else float("nan"),
        "held_out": held_out,
        "train_config": {k: v for k, v in asdict(cfg).items() if k != "model"},
    }
    if earlier:
        info["earlier_runs"] = earlier
    save_idm(model, out, {"training": info})
    write_model_card(Path(out), info, sum(p.numel() for p in model.parameters()))
    return info


# TrainConfig fields and the `train` flags that set them, for the model card's retrain commands.
_FLAGS = {
    "minutes": "--minutes", "pool_clips": "--pool-clips", "simulate_share": "--simulate-share",
    "benchmark_share": "--benchmark-share", "key_camera_share": "--key-camera-share", "lr": "--lr", "seed": "--seed",
}


def retrain_command(train_config: dict, out: str, init: str | None = None) -> str:
    """The `python -m eval.idm train` line that repeats one recorded run (flags only where not the default)."""
    defaults = asdict(TrainConfig())
    flags = [f"{flag} {train_config[name]:g}" for name, flag in _FLAGS.items() if name in train_config and train_config[name] != defaults[name]]
    if init:
        flags.append(f"--init {init}")
    return " ".join(["python -m eval.idm train --out", out, *flags, "--threads 1"])


def _training_lines(info: dict) -> tuple[str, str]:
    """(what it was trained on, how to retrain it) for the model card, over a chain of warm-started runs."""
    runs = [*info.get("earlier_runs", []), info]
    if len(runs) == 1:
        return info["trained_on"], f"`{retrain_command(info['train_config'], 'assets/idm')}`"
    outs = [f"runs/idm-stage{i + 1}" for i in range(len(runs) - 1)] + ["assets/idm"]
    trained = "; then, continuing from it, ".join(
        f"run {i + 1}: {run['trained_on']}, {run['steps']} steps in {run['minutes']:g} minutes" for i, run in enumerate(runs)
    )
    commands = " then ".join(
        f"`{retrain_command(run['train_config'], out, outs[i - 1] if i else None)}`" for i, (run, out) in enumerate(zip(runs, outs))
    )
    return trained, commands


def write_model_card(out: Path, info: dict, parameters: int) -> None:
    """OUT/MODEL_CARD.md: what the IDM is, what it was trained on, and how well it reads held-out true clips."""
    trained_on, retrain = _training_lines(info)
    total_minutes = sum(run["minutes"] for run in [*info.get("earlier_runs", []), info])
    rows = "\n".join(
        f"| {name} | {r['clips']} | {r['keyboard']:.4f} | {r['mouse']:.4f} | "
        f"{r['acc_fb']:.3f} | {r['acc_lr']:.3f} | {r['acc_attack']:.3f} | {r['acc_jump']:.3f} |"
        for name, r in info["held_out"].items()
    )
    bar = ""
    if "benchmark_suite" in info["held_out"]:
        suite = info["held_out"]["benchmark_suite"]
        verdict = {True: "met", False: "NOT met"}
        bar = (
            f"\nIssue 5 asks for >= 0.98 keyboard and >= 0.95 mouse accuracy on the benchmark's true videos: keyboard "
            f"{verdict[suite['keyboard'] >= 0.98]} ({suite['keyboard']:.3f}), mouse {verdict[suite['mouse'] >= 0.95]} "
            f"({suite['mouse']:.3f}).\n"
        )
    misses = ""
    if "benchmark_suite" in info["held_out"]:
        suite = info["held_out"]["benchmark_suite"]
        misses = f" ({1 - suite['acc_fb']:.1%} of forward/back and {1 - suite['acc_lr']:.1%} of left/right transitions)"
    history = ""
    runs = [*info.get("earlier_runs", []), info]
    if len(runs) > 1:
        steps = []
        for i, run in enumerate(runs):
            suite = (run.get("held_out") or {}).get("benchmark_suite")
            if suite:
                steps.append(
                    f"after run {i + 1}, {suite['keyboard']:.4f} keyboard (forward/back {suite['acc_fb']:.3f}, left/right "
                    f"{suite['acc_lr']:.3f}, attack {suite['acc_attack']:.3f}, jump {suite['acc_jump']:.3f}) and {suite['mouse']:.4f} mouse"
                )
        history = (
            "\nOn the 8-scene suite, run by run: " + "; ".join(steps) + ". The continuation runs' settings (how long, "
            "the share of key + camera clips) were chosen by their suite figures, so the suite is not fully "
            "held out from those choices (its worlds never were trained on).\n"
        )
    text = f"""# Inverse dynamics model (worldmodel eval)

Reads, from a video of our voxel world, which keys and mouse moves turned each frame into the next. Used by
`worldmodel eval` for keyboard and mouse accuracy (GameWorld Score's action controllability) and, through its
per-frame trunk, for temporal consistency. Architecture and training: `eval/idm.py`; scoring:
`eval/controllability.py`; the whole evaluator: `docs/EVAL.md`.

- Parameters: {parameters:,} (float32, `model.safetensors`); input 64x64 RGB frames, any clip length >= 2.
- Outputs per transition: forward/back and left/right (3 classes each), pitch and yaw direction (3 classes
  each, moving above 0.01 degrees), jump, attack, use, sprint, sneak (binary), camera delta in degrees.
- Trained on: {trained_on}; {total_minutes:g} minutes of wall time in all on one CPU thread (the last run:
  {info['steps']} steps, {info.get('simulating_minutes', 0):.1f} of its {info['minutes']:g} minutes simulating, final loss {info['final_loss']:.3f}). Its worlds' seeds are
  disjoint from the 32 benchmark scenes' (1000-8003) and from the held-out worlds' (1,000,000 and up).
- Retrain: {retrain}. Training is timed, not counted in steps, so a retrain on another machine
  (or a busier one) gives a similar, not an identical, model.

## Held-out accuracy (simulator's true clips, unseen seeds, GameWorld scoring)

| clips | n | keyboard | mouse | forward/back | left/right | attack | jump |
|---|---|---|---|---|---|---|---|
{rows}

random_play: keys and camera held in random segments (the training player on new worlds).
benchmark_like: one action held for the whole clip, like the 76 benchmark actions, from a scene-like start.
benchmark_suite: the benchmark itself, the simulator's videos of the first scenes (one per biome) x the 76
actions, 65 frames (`python -m eval.idm test --player suite --scenes 8`). Over all 32 scenes it is the
keyboard and mouse column of `worldmodel eval --ground-truth` (docs/EVAL.md).
{bar}{history}
Before (an IDM trained 9 minutes on a fixed 800 clips, seeing both frames' look): 0.905 keyboard
(forward/back 0.839, left/right 0.835, attack 0.995, jump 0.949) and 0.990 mouse on the same 8-scene suite;
it read still videos as "forward" on one beach and "left" in a forest, i.e. it had learnt the worlds.
Where it still misses: walking or strafing while the camera turns up, above all up and sideways at once
(camera_ul, camera_ur: the view goes to the sky and the way of the step must be carried from the first
frames), and a jump read into a plain up-and-sideways turn.

## How much of the benchmark can be read at all

Measured from the simulator's state on the 8-scene suite (38,912 transitions; forward/back and left/right
are each held on 13,312, jump on 7,168), as shares of all transitions:
- a held forward/back key moves the player not at all on 2.2% (walking into a tree or a hillside), and
  nothing in the frame changes on 1.7%; left/right: 3.0% and 2.3%; jump: the eye always moves (the player
  keeps jumping), the frame is unchanged on 0.02%;
- the world (rendered without the hand) looks the same while forward/back is held on 2.5%, left/right on
  3.0%: there a step shows only in the hand's bob, which does not say which way (e.g. the camera-up moves,
  whose view shows mostly sky after about 19 of 64 transitions).
So an IDM reading each transition on its own could reach about 0.986 keyboard at best; with the whole
clip as context nothing is provably unreadable (no two of a scene's 76 videos are identical: the bound
is 1.0). The misses of this IDM{misses} are above the
unreadable share: the limit is the model and its training, not what the frames show.

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
    train.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget, simulation and training together")
    train.add_argument("--pool-clips", type=int, default=1200, help="simulated clips held at once (fresh ones replace the oldest)")
    train.add_argument("--pair-input", choices=("difference", "both"), default="difference", help="what the pair network sees")
    train.add_argument("--hidden", type=int, default=IDMConfig.hidden, help="GRU width per direction")
    train.add_argument("--gru-layers", type=int, default=IDMConfig.gru_layers, help="stacked GRU layers")
    train.add_argument("--simulate-share", type=float, default=TrainConfig.simulate_share, help="share of the time spent simulating")
    train.add_argument("--benchmark-share", type=float, default=TrainConfig.benchmark_share, help="share of benchmark-like clips")
    train.add_argument("--key-camera-share", type=float, default=TrainConfig.key_camera_share, help="share of benchmark-like clips holding a key while turning")
    train.add_argument("--lr", type=float, default=TrainConfig.lr, help="peak learning rate (cosine decay over the time budget)")
    train.add_argument("--init", type=Path, default=None, help="a trained IDM folder to continue from (same architecture)")
    train.add_argument("--seed", type=int, default=0, help="0..9: which block of training worlds, and the initialisation")
    train.add_argument("--suite-scenes", type=int, default=8, help="score the benchmark (N scenes x 76 actions) after training; 0 skips")
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
        cfg = TrainConfig(
            minutes=args.minutes, pool_clips=args.pool_clips, seed=args.seed, benchmark_share=args.benchmark_share,
            suite_scenes=args.suite_scenes, simulate_share=args.simulate_share, key_camera_share=args.key_camera_share,
            lr=args.lr, init=str(args.init) if args.init is not None else "",
            model=IDMConfig(pair_input=args.pair_input, hidden=args.hidden, gru_layers=args.gru_layers),
        )
        info = train_idm(cfg, args.out, args.data)
        print(json.dumps(info["held_out"], indent=2))
        return 0
    model = load_idm(args.model)
    if args.data is not None:
        clips = clips_from_folder(args.data, args.clips)
    elif args.player == "suite":
        clips = suite_clips(args.scenes)
    else:
        first = TrainConfig().test_seed_offset + 500 + (50_000 if args.player == "benchmark" else 0)
        clips = simulated_clips([first + i for i in range(args.clips)], 65, args.player)
    print(json.dumps(accuracy(model, clips), indent=2))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m eval.idm", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
