"""The world memory: points in world coordinates, reprojected against the simulator's own views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from data.render import View, overlay_mask, render_with_depth
from data.scenes import get_scene
from data.world import World
from eval.fidelity import psnr
from worldmodel.memory import CameraPose, WorldMemory, _fill_cracks

SIZE = 64


@pytest.fixture(scope="module")
def scene():
    """A forest scene: its world and eye, for simulator views with their true inverse depth."""
    s = get_scene("forest_0")
    pose = s.pose
    return World.generate(s.seed, s.biome), (pose.x, pose.y + 1.62, pose.z), pose.yaw, pose.pitch


def sim(scene, eye=None, yaw_offset=0.0):
    world, start_eye, yaw, pitch = scene
    eye = start_eye if eye is None else eye
    view = View(eye=eye, yaw=yaw + yaw_offset, pitch=pitch, show_hand=False, show_crosshair=False)
    frame, inv_depth = render_with_depth(world, view, SIZE)
    return frame, inv_depth, CameraPose(eye, yaw + yaw_offset, pitch, 70.0)


def covered_psnr(view, frame) -> float:
    return psnr(view.image[view.covered], frame[view.covered])


def test_a_view_seen_from_the_same_place_comes_back_pixel_for_pixel(scene):
    frame, rho, pose = sim(scene)
    memory = WorldMemory(SIZE)
    memory.insert(frame, rho, pose)
    view = memory.render(pose)
    assert view.covered.all()
    np.testing.assert_array_equal(view.image, frame)
    # Turned away and back: still the same pixels (a turn needs no depth at all).
    memory.render(CameraPose(pose.eye, pose.yaw + 120.0, pose.pitch, pose.fov))
    np.testing.assert_array_equal(memory.render(pose).image, frame)


def test_turning_reprojects_what_was_seen_like_the_simulator(scene):
    frame, rho, pose = sim(scene)
    memory = WorldMemory(SIZE)
    memory.insert(frame, rho, pose)
    turned, _, turned_pose = sim(scene, yaw_offset=10.0)
    view = memory.render(turned_pose)
    # A 10 deg turn brings f * tan(10 deg) = 8 new columns into view on the right: the rest is remembered.
    new = int(math.ceil(turned_pose.focal(SIZE) * math.tan(math.radians(10))))
    assert view.covered[:, : SIZE - new - 2].mean() > 0.97  # the start looks 5 deg down: corners come into view too
    assert view.covered[:, -4:].mean() < 0.05
    assert covered_psnr(view, turned) > 22.0


def test_points_seen_from_too_far_back_are_not_shown(scene):
    frame, rho, pose = sim(scene)
    memory = WorldMemory(SIZE)
    memory.insert(frame, np.full_like(rho, 0.5), pose)  # everything 2 blocks away
    ahead = CameraPose((pose.eye[0], pose.eye[1], pose.eye[2] - 1.5), pose.yaw, pose.pitch, pose.fov)
    assert not memory.render(ahead).covered.any()  # moved 1.5 blocks: 3/4 of their distance
    assert memory.render(pose).covered.all()  # back where they were seen: all there again


def test_walking_forward_reprojects_by_depth(scene):
    frame, rho, pose = sim(scene)
    memory = WorldMemory(SIZE)
    memory.insert(frame, rho, pose)
    fwd = (math.sin(math.radians(pose.yaw)), -math.cos(math.radians(pose.yaw)))
    eye = (pose.eye[0] + 1.5 * fwd[0], pose.eye[1], pose.eye[2] + 1.5 * fwd[1])
    ahead, _, ahead_pose = sim(scene, eye=eye)
    view = memory.render(ahead_pose)
    assert view.covered.mean() > 0.85  # approached points span several pixels: no cracks
    assert covered_psnr(view, ahead) > 20.0
    # The same walk with every point at the wrong depth (all at 5 blocks) is visibly worse.
    wrong = WorldMemory(SIZE)
    wrong.insert(frame, np.full_like(rho, 0.2), pose)
    assert covered_psnr(view, ahead) > covered_psnr(wrong.render(ahead_pose), ahead) + 2.0


def test_what_was_seen_first_is_not_painted_over_by_what_came_later(scene):
    frame, rho, pose = sim(scene)
    memory = WorldMemory(SIZE)
    memory.insert(frame, rho, pose)
    # A later, different picture of the same place at a similar depth (a network's paint, say).
    memory.insert(255 - frame, rho * 1.2, pose)
    np.testing.assert_array_equal(memory.render(pose).image, frame)


def test_memory_is_bounded_and_forgets_what_was_not_seen_for_longest():
    rng = np.random.default_rng(0)
    memory = WorldMemory(SIZE, capacity=5 * SIZE * SIZE)
    poses = [CameraPose((100.0 * i, 0.0, 0.0), 0.0, 0.0, 70.0) for i in range(9)]  # far apart: no view sees another's
    first = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    memory.insert(first, np.full((SIZE, SIZE), 0.1, np.float32), poses[0])
    for pose in poses[1:]:
        memory.render(poses[0])  # keep looking at the first view: it stays recent
        memory.insert(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), np.full((SIZE, SIZE), 0.1, np.float32), pose)
        assert len(memory) <= memory.capacity
    assert sum(len(c.xyz) for c in memory.chunks) == len(memory)
    np.testing.assert_array_equal(memory.render(poses[0]).image, first)
    assert not memory.render(poses[1]).covered.any()  # the oldest unseen view went first


def test_forget_drops_what_is_under_the_crosshair_within_reach(scene):
    frame, rho, pose = sim(scene)
    memory = WorldMemory(SIZE)
    memory.insert(frame, np.full_like(rho, 0.5), pose)  # everything 2 blocks away
    dropped = memory.forget(pose, half_width=4, max_distance=4.5)
    assert dropped == 8 * 8
    view = memory.render(pose, fill_cracks=False)
    assert not view.covered[28:36, 28:36].any() and view.covered[:20].all()
    assert memory.forget(pose, half_width=4, max_distance=1.0) == 0  # nothing that near


def test_the_sky_stays_put_when_walking_and_bad_depth_is_sky():
    memory = WorldMemory(SIZE)
    sky = np.full((SIZE, SIZE, 3), (120, 160, 230), np.uint8)
    rho = np.zeros((SIZE, SIZE), np.float32)
    rho[0, 0], rho[0, 1] = np.nan, -1.0
    memory.insert(sky, rho, CameraPose((0.0, 0.0, 0.0), 0.0, 0.0, 70.0))
    view = memory.render(CameraPose((0.0, 0.0, -3.0), 0.0, 0.0, 70.0))
    assert view.covered.all() and (view.image == sky).all() and (view.inv_depth == 0).all()


def test_bad_input_errors():
    memory = WorldMemory(SIZE)
    pose = CameraPose((0.0, 0.0, 0.0), 0.0, 0.0, 70.0)
    with pytest.raises(ValueError, match="uint8"):
        memory.insert(np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.float32), pose)
    with pytest.raises(ValueError, match="inverse depth"):
        memory.insert(np.zeros((SIZE, SIZE, 3), np.uint8), np.zeros((8, 8), np.float32), pose)
    with pytest.raises(ValueError, match="capacity"):
        WorldMemory(SIZE, capacity=100)


def test_overlay_mask_covers_the_arm_and_crosshair_only():
    mask = overlay_mask(SIZE)
    assert mask[SIZE // 2, SIZE // 2] and mask[-1, -1]  # crosshair centre, arm's corner
    assert not mask[:20].any() and not mask[:, :20].any()
    assert 0.05 < mask.mean() < 0.2


def test_cracks_are_filled_from_the_nearest_neighbour_and_open_edges_are_not():
    """A one-pixel crack in a covered wall takes its nearest neighbour's colour and depth; the straight edge of a
    region never seen (3 covered neighbours) stays open."""
    S = 8
    covered = torch.zeros(S, S, dtype=torch.bool)
    covered[:, :4] = True  # the left half seen, the right half never
    covered[2, 1] = False  # a crack inside the seen half
    depth = torch.full((S, S), 5.0)
    depth[1, 2] = 2.0  # the crack's nearest neighbour, up and to the right
    rgb = torch.zeros(S, S, 3, dtype=torch.uint8)
    rgb[1, 2] = torch.tensor([10, 20, 30], dtype=torch.uint8)
    out_rgb, out_depth, out_covered = _fill_cracks(rgb, depth, covered)
    assert bool(out_covered[2, 1]) and out_depth[2, 1] == 2.0
    assert out_rgb[2, 1].tolist() == [10, 20, 30]
    assert not bool(out_covered[:, 4:].any())  # the unseen half's edge has only 3 covered neighbours
    assert torch.equal(out_rgb[covered], rgb[covered]) and torch.equal(out_depth[covered], depth[covered])
