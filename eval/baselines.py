"""Bad baselines: deliberately broken "models" that each dimension must rank below the true video.

Each baseline turns the simulator's true video for a job into a broken one, keeping the requested actions:
- frozen: the start frame repeated (no motion at all): controllability and pose following must fall;
- shuffled: the true frames after the start frame in a fixed random order: temporal consistency and motion
  smoothness must fall;
- noise: uniform random pixels after the start frame: image quality (and everything else) must fall;
- mismatched: the true video of *another* benchmark action from the same start scene, scored against this
  job's actions: controllability must fall while every picture stays a perfect render.

`worldmodel eval --baseline NAME` scores one, so the README's leaderboard can list them beside the models.
"""

from __future__ import annotations

import zlib

import numpy as np

BASELINES: tuple[str, ...] = ("frozen", "shuffled", "noise", "mismatched")


def _rng(name: str) -> np.random.Generator:
    # A stable seed per video, so a baseline is the same video on every run (results are cached by name).
    return np.random.default_rng(zlib.crc32(name.encode()))


def frozen(frames: np.ndarray) -> np.ndarray:
    return np.repeat(frames[:1], len(frames), axis=0)


def shuffled(frames: np.ndarray, name: str) -> np.ndarray:
    order = np.concatenate([[0], 1 + _rng(name).permutation(len(frames) - 1)])
    return frames[order]


def noise(frames: np.ndarray, name: str) -> np.ndarray:
    out = _rng(name).integers(0, 256, size=frames.shape, dtype=np.uint8)
    out[0] = frames[0]
    return out


def mismatched_action_name(action_name: str, action_names: list[str]) -> str:
    """The action whose true video stands in for `action_name`'s: the next one in the list (a derangement)."""
    if action_name not in action_names:
        raise ValueError(f"{action_name!r} is not one of the suite's actions")
    if len(action_names) < 2:
        raise ValueError("the mismatched baseline needs at least two actions")
    return action_names[(action_names.index(action_name) + 1) % len(action_names)]


def apply(kind: str, frames: np.ndarray, name: str) -> np.ndarray:
    """A frame-only baseline (frozen, shuffled, noise) of a true video; `name` seeds the randomness."""
    if kind == "frozen":
        return frozen(frames)
    if kind == "shuffled":
        return shuffled(frames, name)
    if kind == "noise":
        return noise(frames, name)
    raise ValueError(f"unknown frame baseline {kind!r}; choose one of frozen, shuffled, noise (mismatched swaps videos)")
