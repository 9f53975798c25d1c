"""Replaying a recorded clip through the game: the same frames again, plus what the recording did not keep.

A clip of ours is fully determined by its world seed, biome, frame size and actions (docs/FORMATS.md), and
the game is deterministic, so stepping a fresh game through the clip's actions draws the recorded frames
byte for byte. The replay checks that, and returns each frame's inverse depth (data.render.render_with_depth):
the ground truth the world model's depth head learns from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data.clips import read_clip
from data.game import Game
from data.render import render_with_depth


class ReplayError(ValueError):
    """The clip cannot be replayed (not ours), or the replay drew different frames."""


def replay_inverse_depth(path: str | Path) -> np.ndarray:
    """float32 (T, H, W): the inverse depth (1/blocks, 0 for sky and arm) of each frame of the clip at `path`."""
    clip = read_clip(path)
    meta = clip.meta
    if meta.get("format") != "worldmodel-clip" or "seed" not in meta or "biome" not in meta:
        raise ReplayError(f"{clip.stem}: only clips recorded by `worldmodel record` can be replayed (no world seed)")
    size = int(meta["width"])
    game = Game(int(meta["seed"]), meta["biome"], size)
    game.reset()
    depth = np.empty((len(clip), size, size), np.float32)
    for t in range(len(clip)):
        if t > 0:
            game.step(clip.actions[t - 1])
        frame, depth[t] = render_with_depth(game.world, game.player.view(wrap=game.world.size), size, size)
        if not np.array_equal(frame, clip.frames[t]):
            raise ReplayError(f"{clip.stem}: frame {t} replays differently from the recording "
                              "(recorded by another version of the game?)")  # fmt: skip
    return depth
