"""The long play with the world memory told the simulator's geometry: where the camera is (the game's own eye,
yaw, pitch and field of view, steps, jumps and walls included) and how far each pixel is (the renderer's inverse
depth). The network still paints every frame from its own context; only where the memory puts what it has shown
is the truth. What the play still lacks against the simulator is then the painter's, not the geometry's.

The geometry comes from two places in a Session, and this session replaces both: each game's walk (its pose() for
the memory, and its step(), which moves the network's base and what the memory does not cover) and the depth of
each frame shown (_pixel_depth). The simulator's play must be the same actions from the same start, so frame t
of the play and of the simulator are drawn from the same pose.

    python -m eval.measure --long-play-true-geometry ...   (a row per long-play scene, beside the model's own)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from data.actions import Action
from data.game import Game
from data.render import View, render_with_depth
from worldmodel.memory import CameraPose
from worldmodel.session import Session


def simulator_geometry(game: Game, actions: Sequence[Action], size: int) -> tuple[np.ndarray, list[View], np.ndarray]:
    """The simulator's play of `actions` from its start: frames uint8 (T + 1, size, size, 3), the camera each was
    drawn from (T + 1 Views) and each frame's inverse depth float32 (T + 1, size, size)."""
    frames, views, depths = [game.reset()], [], []
    for act in [None, *actions]:
        if act is not None:
            frames.append(game.step(act))
        views.append(game.player.view())
        depths.append(render_with_depth(game.world, views[-1], size, size)[1])  # the world as it is now: edits count
    return np.stack(frames), views, np.stack(depths)


def camera_pose(view: View) -> CameraPose:
    """The world memory's pose of a simulator camera."""
    return CameraPose(eye=tuple(float(e) for e in view.eye), yaw=view.yaw, pitch=view.pitch, fov=view.fov)


def true_motion(before: View, after: View) -> np.ndarray:
    """The camera's step from one simulator frame to the next, as worldmodel.egomotion gives it: float32 (4,) =
    (right, up, forward) in blocks along the new camera's axes, and the zoom tan(new fov / 2) / tan(old fov / 2)."""
    forward, right, up = camera_pose(after).axes().numpy()
    d = np.subtract(after.eye, before.eye)
    zoom = math.tan(math.radians(after.fov) / 2) / math.tan(math.radians(before.fov) / 2)
    return np.array([d @ right, d @ up, d @ forward, zoom], np.float32)


class _TrueWalk:
    """A Session's walk that is the simulator's camera after as many steps as it has taken: its pose (for the
    memory) and its steps (which move the network's base), walls, slopes and jumps included."""

    def __init__(self, views: list[View]):
        self.views, self.steps = views, 0

    def step(self, keys: np.ndarray, camera: np.ndarray) -> np.ndarray:
        if self.steps + 1 >= len(self.views):
            raise ValueError(f"the simulator's play has {len(self.views)} frames: this session steps past it")
        self.steps += 1
        return true_motion(self.views[self.steps - 1], self.views[self.steps])

    def pose(self) -> CameraPose:
        return camera_pose(self.views[self.steps])


class TrueGeometrySession(Session):
    """A Session (with the world memory) whose walk is the simulator's camera (the memory's pose, the base's steps)
    and whose frames join the memory at the renderer's depth: views (T + 1) and inv_depths (T + 1, H, W) of the
    simulator's play of the actions this session will step."""

    def __init__(self, *args, views: list[View], inv_depths: np.ndarray, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.sampling.memory:
            raise ValueError("the true geometry is the world memory's: this pipeline plays without one")
        self.views, self.inv_depths = views, inv_depths

    def start(self, image: np.ndarray, context=None) -> np.ndarray:
        if context is not None:  # the poses are counted from the image: frame 0 of the simulator's play
            raise ValueError("a play with the true geometry starts from the image alone, without a motion context")
        return super().start(image)

    def _new_memories(self) -> None:
        self.walks = [_TrueWalk(self.views) for _ in self.walks]
        super()._new_memories()

    def _pixel_depth(self, frame) -> np.ndarray:
        super()._pixel_depth(frame)  # keeps the head's latent depth, which moves the context's noise as in play
        return np.repeat(self.inv_depths[self.pos][None], self.batch, axis=0)
