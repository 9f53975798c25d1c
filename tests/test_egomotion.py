"""Walking the camera from the keys alone: the game's physics without a world, checked against the game."""

from __future__ import annotations

import math

import numpy as np
import pytest

from data.actions import KEYS, Action, stack
from data.game import Game
from worldmodel.egomotion import EgoMotion, clip_motion


def keys_of(*names: str) -> np.ndarray:
    return np.array([name in names for name in KEYS], np.float32)


def test_walking_reaches_minecraft_speed_and_stops():
    motion = EgoMotion()
    steps = [motion.step(keys_of("forward"), (0.0, 0.0)) for _ in range(40)]
    assert steps[-1][2] == pytest.approx(0.2159, abs=2e-4)  # 4.317 m/s at 20 ticks/s
    assert all(abs(s[0]) < 1e-9 and abs(s[1]) < 1e-9 and s[3] == 1.0 for s in steps)
    coast = [motion.step(keys_of(), (0.0, 0.0))[2] for _ in range(20)]
    assert coast[0] > 0.1 and coast[-1] < 1e-4  # momentum, then friction stops it


def test_strafe_back_jump_and_sprint_zoom():
    right = EgoMotion()
    assert all(right.step(keys_of("right"), (0.0, 0.0))[0] > 0 for _ in range(5))
    back = EgoMotion()
    assert back.step(keys_of("back"), (0.0, 0.0))[2] < 0
    jump = EgoMotion()
    ups = [jump.step(keys_of("jump") if t == 0 else keys_of(), (0.0, 0.0))[1] for t in range(20)]
    assert ups[0] == pytest.approx(0.42, abs=1e-6) and sum(ups) == pytest.approx(0.0, abs=1e-6)  # up and back to the ground
    assert max(np.cumsum(ups)) == pytest.approx(1.2522, abs=1e-3)  # Minecraft's jump height
    sprint = EgoMotion()
    zooms = [sprint.step(keys_of("forward", "sprint"), (0.0, 0.0))[3] for _ in range(10)]
    sprint_zoom = math.tan(math.radians(70 * 1.15 / 2)) / math.tan(math.radians(35))
    assert zooms[0] > 1.0 and math.prod(zooms) == pytest.approx(sprint_zoom, rel=1e-3)


def test_turning_keeps_momentum_in_the_world():
    motion = EgoMotion()
    for _ in range(30):
        motion.step(keys_of("forward"), (0.0, 0.0))
    turned = motion.step(keys_of(), (0.0, 90.0))  # turn right while coasting: the old forward is now to the left
    assert turned[0] < -0.05 and abs(turned[2]) < 1e-6
    looking_down = EgoMotion(pitch=-60.0)
    step = looking_down.step(keys_of("forward"), (0.0, 0.0))
    assert step[2] > 0 and step[1] > 0  # a level step, seen by a camera looking down, is partly "up" in the picture


def test_matches_the_game_on_open_ground():
    game = Game(5, "plain", 16)
    game.reset()
    acts = [Action({"forward"})] * 12 + [Action({"left"}, (0.0, 4.0))] * 6 + [Action({"jump"})] + [Action()] * 11
    poses = [game.pose]
    for act in acts:
        game.step(act)
        poses.append(game.pose)
    keys, camera = stack(acts)
    predicted = clip_motion(keys, camera, start_pitch=poses[0].pitch)
    checked = 0
    for t, (a, b) in enumerate(zip(poses[:-1], poses[1:])):
        yaw, pitch = math.radians(b.yaw), math.radians(b.pitch)
        d = np.array([b.x - a.x, b.y - a.y, b.z - a.z])
        right = np.array([math.cos(yaw), 0.0, math.sin(yaw)])
        look = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), -math.cos(yaw) * math.cos(pitch)])
        true = (d @ right, d @ look)
        checked += np.linalg.norm(d[[0, 2]]) > 1e-3
        if np.linalg.norm(d[[0, 2]]) > 1e-3:  # skip ticks where the terrain stopped the player
            assert predicted[t][0] == pytest.approx(true[0], abs=0.01) and predicted[t][2] == pytest.approx(true[1], abs=0.03)
    assert checked >= 20


def test_clip_motion_of_no_actions_is_empty():
    assert clip_motion(np.zeros((0, 9)), np.zeros((0, 2))).shape == (0, 4)


def test_pose_follows_the_steps_in_world_axes():
    motion = EgoMotion()
    forward = np.zeros(len(KEYS), np.float32)
    forward[KEYS.index("forward")] = 1.0
    for _ in range(20):
        motion.step(forward, (0.0, 0.0))
    north = motion.pose()
    assert north.eye[2] < -3.0 and abs(north.eye[0]) < 1e-9 and north.eye[1] == 0.0  # yaw 0 walks north (-z)
    motion.step(np.zeros(len(KEYS), np.float32), (0.0, 90.0))
    for _ in range(40):  # the walk east; the first ticks still carry the northward speed, which friction stops
        motion.step(forward, (0.0, 0.0))
    east = motion.pose()
    assert east.eye[0] > north.eye[0] + 3.0 and east.yaw == 90.0 and east.fov == north.fov
