"""The action space: what the player does in one frame.

One `Action` per frame: a set of held keys and a mouse (camera) delta.

- keys: forward, back, left, right, jump, attack, use, sprint, sneak.
  The first six are Matrix-Game 1.0's keyboard; attack and use are the mouse buttons.
- camera: (pitch, yaw) change in degrees for this frame; up is +pitch, right is +yaw.

Converters to and from the MineRL/VPT env-action dict, the VPT recorder jsonl line,
and Matrix-Game 1.0 tensors live further down this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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
    def from_vectors(cls, keys: np.ndarray, camera: np.ndarray) -> "Action":
        """Inverse of keys_vector(): a key counts as held when its value is above 0.5."""
        held = frozenset(name for name, v in zip(KEYS, np.asarray(keys).tolist()) if v > 0.5)
        return cls(held, (float(camera[0]), float(camera[1])))


NOOP = Action()


def stack(actions: list[Action]) -> tuple[np.ndarray, np.ndarray]:
    """Actions -> (keys (T, 9) float32, camera (T, 2) float32 degrees)."""
    keys = np.stack([a.keys_vector() for a in actions]) if actions else np.zeros((0, len(KEYS)), np.float32)
    camera = np.array([a.camera for a in actions], np.float32).reshape(-1, 2)
    return keys, camera
