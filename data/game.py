"""The game: a generated world, the player in it, and the renderer, one tick per frame.

    game = Game(seed=3, biome="forest", size=64)
    obs = game.reset()                      # uint8 (64, 64, 3)
    obs = game.step(Action({"forward"}))    # physics for one tick, then the new frame
    video = game.rollout(actions).frames    # reset(), then one step per action: (T + 1, 64, 64, 3)

Time alignment follows the VPT recorder (docs/ARCHITECTURE.md): the action passed to
`step` is what was pressed while the previous frame was shown; `step` returns the next
frame. The same seed, biome, start pose and action sequence always give the same frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from data.actions import FPS, Action
from data.physics import Player, Pose, StepInfo
from data.render import render
from data.world import World


@dataclass
class Rollout:
    """A play of fixed actions from the start: frames[0] is the start, frames[t + 1] what actions[t] made."""

    frames: np.ndarray  # uint8 (T + 1, size, size, 3)
    poses: list[Pose]  # T + 1: the pose each frame was drawn from


def spawn_pose(world: World, seed: int) -> Pose:
    """The default start: the world's spawn point, facing a direction picked from the seed."""
    x, y, z = world.spawn_point(seed)
    yaw = float(np.random.default_rng([int(seed) & 0xFFFFFFFF, 1]).integers(0, 8)) * 45.0
    return Pose(x, y, z, yaw, 0.0)


class Game:
    """World + player + renderer. `size` is the side of the square frames `step` returns."""

    fps: int = FPS

    def __init__(
        self,
        seed: int,
        biome: str | None = None,
        size: int = 64,
        pose: Pose | None = None,
        world_size: int = 256,
        world_height: int = 64,
    ) -> None:
        if size < 8:
            raise ValueError(f"frame size must be at least 8 pixels, got {size}")
        self.seed = int(seed)
        self.size = int(size)
        self.world = World.generate(self.seed, biome, size=world_size, height=world_height)
        self.biome = self.world.biome
        # Kept so reset() can undo the player's edits without generating the terrain again.
        self._initial_blocks = self.world.blocks.copy()
        self._initial_tile_top = self.world.tile_top.copy()
        self.start_pose = pose if pose is not None else spawn_pose(self.world, self.seed)
        self.player = Player(self.start_pose, self.world)
        self.last_info = StepInfo()

    @property
    def pose(self) -> Pose:
        return self.player.pose

    def reset(self) -> np.ndarray:
        """Undo every edit, put the player back at the start pose, and return the first frame."""
        self.world.blocks[...] = self._initial_blocks
        self.world.tile_top[...] = self._initial_tile_top
        self.player = Player(self.start_pose, self.world)
        self.last_info = StepInfo()
        return self.observe()

    def step(self, act: Action) -> np.ndarray:
        """Apply one tick of physics for `act`, then return the new frame (size x size x 3 uint8)."""
        self.last_info = self.player.step(self.world, act)
        return self.observe()

    def rollout(self, actions: Sequence[Action]) -> Rollout:
        """reset(), then step through `actions` in turn: the simulator's video of them, and its poses."""
        frames, poses = [self.reset()], [self.pose]
        for act in actions:
            frames.append(self.step(act))
            poses.append(self.pose)
        return Rollout(np.stack(frames), poses)

    def observe(self, size: int | None = None) -> np.ndarray:
        """The current frame, at `size` pixels square (default: the game's size)."""
        side = self.size if size is None else int(size)
        return render(self.world, self.player.view(wrap=self.world.size), side, side)
