"""The action space: what the player does in one frame.

One `Action` per frame: a set of held keys and a mouse (camera) delta.

- keys: forward, back, left, right, jump, attack, use, sprint, sneak.
  The first six are Matrix-Game 1.0's keyboard; attack and use are the mouse buttons.
- camera: (pitch, yaw) change in degrees for this frame; up is +pitch, right is +yaw.

Converters to and from the MineRL/VPT env-action dict, the VPT recorder jsonl line,
and Matrix-Game 1.0 tensors live further down this file.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from data.files import write_text_atomic

# Frames per second, which is also actions and physics ticks per second: one of each per frame.
FPS = 20

KEYS: tuple[str, ...] = ("forward", "back", "left", "right", "jump", "attack", "use", "sprint", "sneak")
KEY_INDEX: dict[str, int] = {name: i for i, name in enumerate(KEYS)}
MATRIX_GAME_KEYS: tuple[str, ...] = KEYS[:6]

# A camera delta beyond this many degrees in one frame is treated as corrupt input.
MAX_CAMERA_DEG = 180.0


@dataclass(frozen=True)
class Action:
    """One frame of input. `keys` holds names from KEYS; `camera` is (pitch, yaw) in degrees."""

    keys: frozenset[str] = field(default_factory=frozenset)
    camera: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", frozenset(self.keys))
        unknown = self.keys - set(KEYS)
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)}; known keys: {', '.join(KEYS)}")
        pitch, yaw = (float(v) for v in self.camera)
        for name, value in (("pitch", pitch), ("yaw", yaw)):
            if not np.isfinite(value):
                raise ValueError(f"camera {name} is {value}; it must be a finite number of degrees")
            if abs(value) > MAX_CAMERA_DEG:
                raise ValueError(f"camera {name} delta {value} deg exceeds the {MAX_CAMERA_DEG} deg limit per frame")
        object.__setattr__(self, "camera", (pitch, yaw))

    def pressed(self, key: str) -> bool:
        return key in self.keys

    def keys_vector(self) -> np.ndarray:
        """Multi-hot float32 vector of length len(KEYS), in KEYS order."""
        vec = np.zeros(len(KEYS), np.float32)
        for key in self.keys:
            vec[KEY_INDEX[key]] = 1.0
        return vec

    @classmethod
    def from_vectors(cls, keys: np.ndarray, camera: np.ndarray) -> Action:
        """Inverse of keys_vector(): a key counts as held when its value is above 0.5."""
        held = frozenset(name for name, v in zip(KEYS, np.asarray(keys).tolist()) if v > 0.5)
        return cls(held, (float(camera[0]), float(camera[1])))


NOOP = Action()


def stack(actions: list[Action]) -> tuple[np.ndarray, np.ndarray]:
    """Actions -> (keys (T, 9) float32, camera (T, 2) float32 degrees)."""
    keys = np.stack([a.keys_vector() for a in actions]) if actions else np.zeros((0, len(KEYS)), np.float32)
    camera = np.array([a.camera for a in actions], np.float32).reshape(-1, 2)
    return keys, camera


# ----------------------------------------------------------------------------- converters
#
# Three outside formats, checked against the reference code (openai/Video-Pre-Training,
# SkyworkAI/Matrix-Game and its GameWorld Score benchmark files):
#
# 1. The MineRL / VPT env-action dict: {"forward": 0/1, ..., "camera": [pitch, yaw]} in degrees.
#    Minecraft's pitch grows when looking DOWN, and so does MineRL's camera[0]: VPT's
#    `json_action_to_env_action` sets camera[0] = mouse.dy * 360/2400 (mouse moved down ->
#    positive), and GameWorld Score's benchmark file for "camera_up" holds camera [-5, 0].
#    Our Action has +pitch = up, so camera[0] = -act.camera[0]; yaw (camera[1]) is right-positive
#    in both. The dict also carries VPT's other buttons (ESC, drop, hotbar.1-9, inventory,
#    swapHands, pickItem) as 0 so that VPT tools accept it; reading ignores them.
# 2. The VPT recorder jsonl line: keyboard.keys such as "key.keyboard.w", mouse.dx/dy in counts
#    at 360/2400 degrees per count (dy > 0 means the mouse moved down: look down), and
#    mouse.buttons where 0 is the left button (attack) and 1 the right (use). Its yaw/pitch/xpos/
#    ypos/zpos fields are written in Minecraft's conventions: Minecraft's yaw is 0 facing south
#    (+z) and 90 facing west, so mc_yaw = our_yaw + 180 (wrapped to [-180, 180)); mc_pitch =
#    -our_pitch; the positions share our axes (x east, y up, z south). Our own fields (exact
#    camera degrees, pose, player state) go under "wm", so a round trip is exact (dx/dy times
#    360/2400 may differ from the degrees in the last bit). A line without "wm" (a real
#    recording) is read from dx/dy. As in VPT's own loader, isGuiOpen does not change how
#    the mouse is read.
# 3. Matrix-Game 1.0 tensors: keyboard (T, 6) in [forward, back, left, right, jump, attack] and
#    mouse (T, 2) in [pitch, yaw] with +pitch = up (its Bench_actions_76 uses [+0.05, 0] for
#    "camera_up"). The same benchmark's MineRL files move the camera 5 degrees per frame for
#    that action, so one Matrix-Game mouse unit is 100 degrees: mouse = degrees * 0.01.

CAMERA_DEG_PER_COUNT = 360.0 / 2400.0  # VPT: degrees of camera turn per mouse count
MATRIX_GAME_MOUSE_PER_DEG = 0.01  # Matrix-Game mouse units per degree (see the note above)

# The MineRL env-action keys VPT's tools expect, beyond ours; written as 0, ignored on reading.
MINERL_OTHER_BUTTONS: tuple[str, ...] = (
    "ESC", "drop", "hotbar.1", "hotbar.2", "hotbar.3", "hotbar.4", "hotbar.5", "hotbar.6", "hotbar.7",
    "hotbar.8", "hotbar.9", "inventory", "swapHands", "pickItem",
)

# VPT recorder key names -> our keys. Other key.keyboard.* names (e, q, 1-9, escape...) are
# legitimately present in real recordings and are ignored.
VPT_KEYS: dict[str, str] = {
    "key.keyboard.w": "forward",
    "key.keyboard.s": "back",
    "key.keyboard.a": "left",
    "key.keyboard.d": "right",
    "key.keyboard.space": "jump",
    "key.keyboard.left.shift": "sneak",
    "key.keyboard.left.control": "sprint",
}
KEY_TO_VPT: dict[str, str] = {ours: vpt for vpt, ours in VPT_KEYS.items()}
VPT_BUTTONS: dict[int, str] = {0: "attack", 1: "use"}
BUTTON_TO_VPT: dict[str, int] = {ours: b for b, ours in VPT_BUTTONS.items()}

# Where the recorder's GUI cursor sits (a 1280x720 window's centre); unused while playing.
VPT_SCREEN_CENTRE = (640.0, 360.0)


class ActionFormatError(ValueError):
    """An action record that cannot be read; the message names the file and line when known."""


class PoseLike(Protocol):
    x: float
    y: float
    z: float
    yaw: float
    pitch: float


def _check_camera(pitch: Any, yaw: Any, what: str) -> tuple[float, float]:
    out = []
    for name, value in (("pitch", pitch), ("yaw", yaw)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ActionFormatError(f"{what} {name} must be a number, got {type(value).__name__} {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ActionFormatError(f"{what} {name} is {value}; it must be a finite number of degrees")
        if abs(value) > MAX_CAMERA_DEG:
            raise ActionFormatError(f"{what} {name} delta {value} deg exceeds the {MAX_CAMERA_DEG} deg limit per frame")
        out.append(value)
    return out[0], out[1]


def _flag(d: dict, key: str) -> bool:
    """A MineRL button: 0/1 (int, bool or a float equal to 0 or 1); anything else is an error."""
    value = d.get(key, 0)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value) in (0.0, 1.0):
        return float(value) == 1.0
    raise ActionFormatError(f"{key!r} must be 0 or 1, got {value!r}")


def to_minerl(act: Action) -> dict[str, Any]:
    """Action -> MineRL/VPT env-action dict (camera[0] positive = look down, as in Minecraft)."""
    d: dict[str, Any] = {name: 0 for name in MINERL_OTHER_BUTTONS}
    for key in KEYS:
        d[key] = int(key in act.keys)
    pitch, yaw = act.camera
    d["camera"] = [-pitch + 0.0, yaw]  # + 0.0 turns -0.0 into 0.0
    return d


def from_minerl(d: dict[str, Any]) -> Action:
    """MineRL/VPT env-action dict -> Action. Keys other than ours and "camera" are ignored."""
    if not isinstance(d, dict):
        raise ActionFormatError(f"a MineRL action must be a JSON object, got {type(d).__name__}")
    keys = frozenset(key for key in KEYS if _flag(d, key))
    camera = d.get("camera", (0.0, 0.0))
    if isinstance(camera, np.ndarray):
        camera = camera.tolist()
    if not isinstance(camera, (list, tuple)) or len(camera) != 2:
        raise ActionFormatError(f"'camera' must be [pitch, yaw], got {camera!r}")
    pitch_down, yaw = _check_camera(camera[0], camera[1], "camera")
    return Action(keys, (-pitch_down + 0.0, yaw))


def _mc_yaw(yaw: float) -> float:
    """Our yaw (0 north, 90 east) -> Minecraft's (0 south, 90 west), in [-180, 180)."""
    return (yaw + 180.0 + 180.0) % 360.0 - 180.0


def to_vpt_line(
    act: Action,
    pose: PoseLike | None = None,
    tick: int = 0,
    extra: dict[str, Any] | None = None,
    prev: Action | None = None,
) -> dict[str, Any]:
    """Action (and the pose it was taken from) -> one VPT recorder jsonl record.

    `prev` (the previous frame's action) fills VPT's newKeys/newButtons; `extra` is merged
    into our "wm" field (it must be JSON-serialisable).
    """
    pitch, yaw = act.camera
    held = sorted(KEY_TO_VPT[k] for k in act.keys if k in KEY_TO_VPT)
    buttons = sorted(BUTTON_TO_VPT[k] for k in act.keys if k in BUTTON_TO_VPT)
    before = prev.keys if prev is not None else frozenset()
    new_keys = sorted(KEY_TO_VPT[k] for k in act.keys - before if k in KEY_TO_VPT)
    new_buttons = sorted(BUTTON_TO_VPT[k] for k in act.keys - before if k in BUTTON_TO_VPT)
    wm: dict[str, Any] = {"camera": [pitch, yaw], "keys": sorted(act.keys)}
    if pose is not None:
        wm["pose"] = {"x": pose.x, "y": pose.y, "z": pose.z, "yaw": pose.yaw, "pitch": pose.pitch}
    if extra:
        wm.update(extra)
    return {
        "mouse": {
            "x": VPT_SCREEN_CENTRE[0],
            "y": VPT_SCREEN_CENTRE[1],
            "dx": yaw / CAMERA_DEG_PER_COUNT + 0.0,
            "dy": -pitch / CAMERA_DEG_PER_COUNT + 0.0,  # mouse moved down = look down
            "scaledX": 0.0,
            "scaledY": 0.0,
            "dwheel": 0.0,
            "buttons": buttons,
            "newButtons": new_buttons,
        },
        "keyboard": {"keys": held, "newKeys": new_keys, "chars": ""},
        "isGuiOpen": False,
        "isGuiInventory": False,
        "hotbar": 0,
        "yaw": _mc_yaw(pose.yaw) if pose is not None else 0.0,
        "pitch": -pose.pitch + 0.0 if pose is not None else 0.0,
        "xpos": pose.x if pose is not None else 0.0,
        "ypos": pose.y if pose is not None else 0.0,
        "zpos": pose.z if pose is not None else 0.0,
        "tick": int(tick),
        "milli": int(tick) * 50,
        "inventory": [],
        "serverTick": int(tick),
        "serverTickDurationMs": 50.0,
        "stats": {},
        "wm": wm,
    }


def from_vpt_line(d: dict[str, Any]) -> Action:
    """One VPT recorder record -> Action. Keys we do not model (e, 1-9, ...) are ignored.

    When our "wm" field holds the exact camera degrees, those win over mouse.dx/dy.
    """
    if not isinstance(d, dict):
        raise ActionFormatError(f"a VPT record must be a JSON object, got {type(d).__name__}")
    keyboard, mouse = d.get("keyboard"), d.get("mouse")
    if not isinstance(keyboard, dict) or not isinstance(mouse, dict):
        raise ActionFormatError("a VPT record needs 'keyboard' and 'mouse' objects")
    names = keyboard.get("keys", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ActionFormatError(f"keyboard.keys must be a list of strings, got {names!r}")
    buttons = mouse.get("buttons", [])
    if not isinstance(buttons, list) or not all(isinstance(b, int) and not isinstance(b, bool) for b in buttons):
        raise ActionFormatError(f"mouse.buttons must be a list of integers, got {buttons!r}")
    keys = {VPT_KEYS[n] for n in names if n in VPT_KEYS} | {VPT_BUTTONS[b] for b in buttons if b in VPT_BUTTONS}
    wm = d.get("wm")
    if isinstance(wm, dict) and "camera" in wm:
        camera = wm["camera"]
        if not isinstance(camera, list) or len(camera) != 2:
            raise ActionFormatError(f"wm.camera must be [pitch, yaw], got {camera!r}")
        pitch, yaw = _check_camera(camera[0], camera[1], "wm.camera")
    else:
        for axis in ("dx", "dy"):
            value = mouse.get(axis, 0.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ActionFormatError(f"mouse.{axis} must be a number, got {value!r}")
        dx, dy = float(mouse.get("dx", 0.0)), float(mouse.get("dy", 0.0))
        pitch, yaw = _check_camera(-dy * CAMERA_DEG_PER_COUNT + 0.0, dx * CAMERA_DEG_PER_COUNT, "mouse")
    return Action(frozenset(keys), (pitch, yaw))


def to_matrix_game(actions: list[Action]) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: F821 (torch is imported inside: it is slow to import)
    """Actions -> Matrix-Game 1.0 (keyboard (T, 6) float32, mouse (T, 2) float32 [pitch, yaw], +pitch up).

    use, sprint and sneak have no place in Matrix-Game's keyboard and are dropped.
    """
    import torch  # imported here: torch takes seconds to import and most users of this file never need it

    keys, camera = stack(actions)
    keyboard = torch.from_numpy(keys[:, : len(MATRIX_GAME_KEYS)].copy())
    mouse = torch.from_numpy((camera.astype(np.float64) * MATRIX_GAME_MOUSE_PER_DEG).astype(np.float32))
    return keyboard, mouse


def from_matrix_game(keyboard: Any, mouse: Any) -> list[Action]:
    """Matrix-Game 1.0 tensors or arrays (keyboard (T, 6), mouse (T, 2)) -> Actions."""
    kb = np.asarray(keyboard.detach().cpu() if hasattr(keyboard, "detach") else keyboard, dtype=np.float64)
    ms = np.asarray(mouse.detach().cpu() if hasattr(mouse, "detach") else mouse, dtype=np.float64)
    if kb.ndim != 2 or kb.shape[1] != len(MATRIX_GAME_KEYS):
        raise ActionFormatError(f"keyboard must be (T, {len(MATRIX_GAME_KEYS)}), got shape {kb.shape}")
    if ms.shape != (kb.shape[0], 2):
        raise ActionFormatError(f"mouse must be (T, 2) with T = {kb.shape[0]}, got shape {ms.shape}")
    actions = []
    for t in range(kb.shape[0]):
        held = frozenset(name for name, v in zip(MATRIX_GAME_KEYS, kb[t]) if v > 0.5)
        # Rounding to 1e-6 degrees undoes float32's noise so 5 degrees come back as 5.0.
        deg = np.round(ms[t] / MATRIX_GAME_MOUSE_PER_DEG, 6)
        try:
            pitch, yaw = _check_camera(float(deg[0]), float(deg[1]), f"mouse[{t}]")
        except ActionFormatError as e:
            raise ActionFormatError(f"frame {t}: {e}") from None
        actions.append(Action(held, (pitch, yaw)))
    return actions


# ----------------------------------------------------------------------------- files


def _is_vpt_record(d: Any) -> bool:
    return isinstance(d, dict) and "keyboard" in d and "mouse" in d


def _parse_record(d: Any) -> tuple[str, Action]:
    kind = "vpt" if _is_vpt_record(d) else "minerl"
    return kind, (from_vpt_line(d) if kind == "vpt" else from_minerl(d))


def read_actions(path: str | os.PathLike) -> list[Action]:
    """Read actions from a VPT recorder jsonl, a MineRL-dict jsonl, or a JSON list of either.

    The format is detected from the first record; every record must share it. Errors name
    the file and the line (or, for a JSON list, the item).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ActionFormatError(f"{path}: not UTF-8 text ({e})") from None
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text, parse_constant=reject_constant)
        except json.JSONDecodeError as e:
            raise ActionFormatError(f"{path}:{e.lineno}: bad JSON: {e.msg}") from None
        except ValueError as e:
            raise ActionFormatError(f"{path}: {e}") from None
        except RecursionError:
            raise ActionFormatError(f"{path}: JSON nested too deeply") from None
        if not isinstance(items, list):
            raise ActionFormatError(f"{path}: expected a JSON list of actions")
        where = [f"{path}: item {i}" for i in range(len(items))]
    else:
        lines = text.split("\n")
        while lines and not lines[-1].strip():
            lines.pop()  # a final newline (or several) is not a record
        items, where = [], []
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                raise ActionFormatError(f"{path}:{lineno}: empty line in the middle of the file")
            try:
                items.append(json.loads(line, parse_constant=reject_constant))
            except json.JSONDecodeError as e:
                raise ActionFormatError(f"{path}:{lineno}: bad JSON: {e.msg} (column {e.colno})") from None
            except ValueError as e:
                raise ActionFormatError(f"{path}:{lineno}: {e}") from None
            except RecursionError:
                raise ActionFormatError(f"{path}:{lineno}: JSON nested too deeply") from None
            where.append(f"{path}:{lineno}")
    actions, first_kind = [], None
    for item, place in zip(items, where):
        try:
            kind, act = _parse_record(item)
        except (ActionFormatError, ValueError) as e:
            raise ActionFormatError(f"{place}: {e}") from None
        if first_kind is None:
            first_kind = kind
        elif kind != first_kind:
            raise ActionFormatError(f"{place}: a {kind} record in a file of {first_kind} records")
        actions.append(act)
    return actions


def reject_constant(name: str) -> float:
    """`json.loads(..., parse_constant=reject_constant)`: NaN and infinities in action JSON are errors, not numbers."""
    raise ValueError(f"{name} is not a number (NaN and infinities are rejected)")


def write_actions(
    path: str | os.PathLike,
    actions: list[Action],
    poses: list[PoseLike] | None = None,
    extras: list[dict[str, Any]] | None = None,
) -> None:
    """Write actions as VPT recorder jsonl (one line per frame), atomically."""
    if poses is not None and len(poses) != len(actions):
        raise ValueError(f"{len(poses)} poses for {len(actions)} actions; give one pose per action")
    if extras is not None and len(extras) != len(actions):
        raise ValueError(f"{len(extras)} extras for {len(actions)} actions; give one per action")
    lines, prev = [], None
    for t, act in enumerate(actions):
        pose = poses[t] if poses is not None else None
        extra = extras[t] if extras is not None else None
        lines.append(json.dumps(to_vpt_line(act, pose, tick=t, extra=extra, prev=prev), allow_nan=False))
        prev = act
    write_text_atomic(path, "".join(line + "\n" for line in lines))


