"""Action labels in the encoding the IDM predicts and GameWorld scores: what each transition's action was.

Keyboard: forward/back and left/right as GameWorld's exclusive 3-class tasks (0 = neither or both, 1 = the
first, 2 = the second), the binary keys jump, attack, use, sprint, sneak. Mouse: the direction of the pitch
and of the yaw change (0 = still, 1 = +, 2 = -), and the camera delta in degrees. The bottom of eval/: the
IDM (eval/idm/model.py) predicts these and the scorers (eval/controllability.py) compare them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.actions import KEY_INDEX, Action

BINARY_KEYS: tuple[str, ...] = ("jump", "attack", "use", "sprint", "sneak")
# The camera moved along an axis when |delta| > this many degrees: GameWorld's camera_direction threshold.
CAMERA_THRESHOLD_DEG = 1e-2


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
