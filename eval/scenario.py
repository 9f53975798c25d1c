"""Scenario consistency: turn away and come back; is the place still there?

What it measures: the video is generated from a round trip of actions: the camera turns one way for N frames
and back the same way for N frames (`round_trip_actions`), so frame i and frame 2N - i are taken from the
same pose. A world model with a memory of the scene shows the same place again; one that forgets paints a
new one. Each pair (i, 2N - i) is compared by mean absolute pixel difference, allowing a shift of up to
MAX_SHIFT pixels, and score = 1 - mean difference / 255, in [0, 1].

How it differs from the paper's scorer: this is the same measure as the scenario-consistency script that
ships with GameWorld Score (pairs i and -(i+1), minimum over shifts up to 4 px at 256x256), scaled to our
64x64 frames (1 px here is 4 px there). The paper's published table has no column for it; ours runs on
dedicated round-trip videos (the turn below), not on the 76 benchmark actions.
"""

from __future__ import annotations

import numpy as np

from data.actions import Action

MAX_SHIFT = 1
TURN_DEG = 6.0  # per frame: 16 frames x 6 deg = 96 deg away, so the start view leaves the 70 deg frame
SCORER_NAME = "GameWorld scenario script (round trip, min-shift MAE), 64x64"


def round_trip_actions(frames_each_way: int = 16, turn_deg: float = TURN_DEG, axis: str = "yaw") -> list[Action]:
    """2N + 1 actions: turn by +turn_deg for N frames, back for N frames, then a no-op (the last one is unused)."""
    if axis not in ("yaw", "pitch"):
        raise ValueError(f"axis must be 'yaw' or 'pitch', got {axis!r}")
    step = (0.0, turn_deg) if axis == "yaw" else (turn_deg, 0.0)
    back = (-step[0], -step[1])
    return [Action(camera=step)] * frames_each_way + [Action(camera=back)] * frames_each_way + [Action()]


def min_shift_difference(a: np.ndarray, b: np.ndarray, max_shift: int = MAX_SHIFT) -> float:
    """Smallest mean |a - b| (0..255) over integer shifts of up to max_shift pixels, on the overlap."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    h, w = a.shape[:2]
    best = np.inf
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            crop_a = a[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
            crop_b = b[max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)]
            best = min(best, float(np.mean(np.abs(crop_a - crop_b))))
    return best


def scenario_consistency(frames: np.ndarray) -> float:
    """1 - mean min-shift difference / 255 over the pairs (i, T-1-i) of a round-trip video (T odd)."""
    n = len(frames) // 2
    if n < 1:
        raise ValueError(f"scenario consistency needs at least 3 frames, got {len(frames)}")
    diffs = [min_shift_difference(frames[i], frames[len(frames) - 1 - i]) for i in range(n)]
    return float(np.clip(1.0 - np.mean(diffs) / 255.0, 0.0, 1.0))
