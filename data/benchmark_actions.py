"""GameWorld Score's 76 benchmark actions, 65 frames each.

The set and its names follow Matrix-Game's `Bench_actions_76` (SkyworkAI/Matrix-Game,
`condtions.py`) and the MineRL action files GameWorld Score ships (`Bench76/test_<name>.jsonl`):

- 6 single keys: forward, back, left, right, jump, attack
- 8 camera moves: camera_up, camera_down, camera_l, camera_r, camera_ur, camera_ul, camera_dl, camera_dr
- 1 "empty" (no input at all)
- 13 key pairs, Matrix-Game's list: the 4 diagonal walks (forward_left, forward_right,
  back_left, back_right), each of the 4 movement keys with jump (forward_jump, back_jump,
  left_jump, right_jump) and with attack (forward_attack, back_attack, left_attack,
  right_attack), and jump_attack. Pairs of opposite keys (forward_back, left_right) are left
  out because they cancel, and every key pair with jump or attack is in.
- 48 key + camera: each of the 6 single keys with each of the 8 camera moves, e.g. jump_camera_ur.

Conventions taken from those sources: the camera turns 5 degrees per frame (GameWorld's
MineRL files hold camera [-5, 0] for camera_up, [-5, 5] for camera_ur: MineRL pitch is
positive looking down); attack is pressed in bursts, released on frames 0-7 and held on
frames 8-15 of every 16 (frame t holds attack when t % 16 >= 8), so the hand swings and stops.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from data.actions import Action, to_minerl
from data.files import write_text_atomic

FRAMES = 65
CAMERA_DEG = 5.0  # degrees per frame

SINGLE_KEYS: tuple[str, ...] = ("forward", "back", "left", "right", "jump", "attack")
CAMERA_MOVES: dict[str, tuple[float, float]] = {  # name -> (pitch, yaw) direction, +pitch up, +yaw right
    "camera_up": (1.0, 0.0),
    "camera_down": (-1.0, 0.0),
    "camera_l": (0.0, -1.0),
    "camera_r": (0.0, 1.0),
    "camera_ur": (1.0, 1.0),
    "camera_ul": (1.0, -1.0),
    "camera_dl": (-1.0, -1.0),
    "camera_dr": (-1.0, 1.0),
}
KEY_PAIRS: tuple[tuple[str, str], ...] = (
    ("forward", "left"), ("forward", "right"), ("back", "left"), ("back", "right"),
    ("forward", "jump"), ("back", "jump"), ("left", "jump"), ("right", "jump"),
    ("forward", "attack"), ("back", "attack"), ("left", "attack"), ("right", "attack"),
    ("jump", "attack"),
)  # fmt: skip


def _attack_held(t: int) -> bool:
    return t % 16 >= 8


def _sequence(keys: tuple[str, ...], camera: tuple[float, float] = (0.0, 0.0)) -> list[Action]:
    pitch, yaw = camera[0] * CAMERA_DEG, camera[1] * CAMERA_DEG
    out = []
    for t in range(FRAMES):
        held = {k for k in keys if k != "attack" or _attack_held(t)}
        out.append(Action(frozenset(held), (pitch, yaw)))
    return out


def benchmark_actions() -> dict[str, list[Action]]:
    """The 76 named sequences of FRAMES actions, in Matrix-Game's order."""
    seqs: dict[str, list[Action]] = {}
    for key in SINGLE_KEYS:
        seqs[key] = _sequence((key,))
    for name, direction in CAMERA_MOVES.items():
        seqs[name] = _sequence((), direction)
    seqs["empty"] = _sequence(())
    for a, b in KEY_PAIRS:
        seqs[f"{a}_{b}"] = _sequence((a, b))
    for key in SINGLE_KEYS:
        for name, direction in CAMERA_MOVES.items():
            seqs[f"{key}_{name}"] = _sequence((key,), direction)
    return seqs


def write_minerl_files(directory: str | os.PathLike) -> list[Path]:
    """Write one MineRL-dict jsonl per benchmark action (`<name>.jsonl`, FRAMES lines); return the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, actions in benchmark_actions().items():
        path = directory / f"{name}.jsonl"
        write_text_atomic(path, "".join(json.dumps(to_minerl(a)) + "\n" for a in actions))
        paths.append(path)
    return paths
