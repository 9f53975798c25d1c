"""The 32 fixed start scenes (8 biomes x 4) used by the demo and the evaluator.

Like GameWorld Score's 32 start images, each biome gets four scenes, here from four
fixed seeds. A scene's pose is derived from its world, deterministically: the world's
spawn point for that seed, looking slightly down (pitch -5) towards the scene's
heading (0, 90, 180 or 270 degrees), turned by the smallest multiple of 45 degrees
that leaves at least OPEN_DISTANCE blocks of free view ahead, so no scene starts
with its face against a tree trunk or a hillside. Deriving the pose (rather than
storing numbers) keeps the scenes valid when terrain generation changes; the
price is a world generation (~0.1 s) the first time a scene's pose is asked for.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from data.game import Game
from data.physics import EYE_HEIGHT, Pose
from data.render import raycast_block
from data.terrain import BIOMES
from data.world import World

SCENES_PER_BIOME = 4
START_PITCH = -5.0
OPEN_DISTANCE = 6.0  # blocks of free view required straight ahead
TURNS = (0.0, 45.0, -45.0, 90.0, -90.0, 135.0, -135.0, 180.0)


@functools.lru_cache(maxsize=64)
def _start_pose(seed: int, biome: str, heading: float) -> Pose:
    world = World.generate(seed, biome)
    x, y, z = world.spawn_point(seed)
    eye = (x, y + EYE_HEIGHT, z)
    for turn in TURNS:
        yaw = (heading + turn) % 360.0
        # Both at eye level and along the slightly lowered gaze, nothing within reach.
        if all(raycast_block(world, eye, yaw, pitch, OPEN_DISTANCE) is None for pitch in (0.0, START_PITCH)):
            return Pose(x, y, z, yaw, START_PITCH)
    return Pose(x, y, z, heading % 360.0, START_PITCH)  # boxed in on all sides: keep the heading


@dataclass(frozen=True)
class Scene:
    """A named start: a world (seed, biome) and where the player stands in it."""

    name: str
    seed: int
    biome: str
    heading: float = 0.0

    def __post_init__(self) -> None:
        if self.biome not in BIOMES:
            raise ValueError(f"unknown biome {self.biome!r}; choose one of {', '.join(BIOMES)}")

    @property
    def pose(self) -> Pose:
        return _start_pose(self.seed, self.biome, self.heading)

    def game(self, size: int = 64) -> Game:
        return Game(self.seed, self.biome, size=size, pose=self.pose)

    def image(self, size: int = 64) -> np.ndarray:
        """The scene's first frame, uint8 (size, size, 3)."""
        return self.game(size).observe()


SCENES: tuple[Scene, ...] = tuple(
    Scene(f"{biome}_{k}", seed=1000 * (b + 1) + k, biome=biome, heading=90.0 * k)
    for b, biome in enumerate(BIOMES)
    for k in range(SCENES_PER_BIOME)
)
_BY_NAME: dict[str, Scene] = {scene.name: scene for scene in SCENES}


def get_scene(name: str) -> Scene:
    """A scene by name, e.g. "forest_2"."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown scene {name!r}; scenes are {', '.join(_BY_NAME)}")
    return _BY_NAME[name]
