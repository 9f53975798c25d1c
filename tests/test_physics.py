"""The rules of the world's physics: gravity, collision, jumps, speeds, look, water, interaction."""

import math

import numpy as np
import pytest

from data.actions import Action
from data.blocks import PLACED_BLOCK, Block
from data.physics import (
    ATTACK_REPEAT_TICKS,
    EYE_HEIGHT,
    FOV,
    PITCH_LIMIT,
    SNEAK_EYE_HEIGHT,
    SPRINT_FOV_FACTOR,
    SWING_TICKS,
    Player,
    Pose,
)
from data.render import render
from data.world import World, compute_tile_top

FLOOR_TOP = 5  # solid cells y = 0..4, so a player standing on the floor has feet at y = 5


def BoxWorld(size: int = 32, height: int = 24) -> World:
    """A hand-built world: a stone floor (cells y < FLOOR_TOP), then air. Tests carve it further."""
    blocks = np.zeros((size, height, size), np.uint8)
    blocks[:, :FLOOR_TOP, :] = Block.STONE
    return World(blocks, seed=0, biome="plain")


def refresh(world: World) -> World:
    """After editing world.blocks directly, bring the renderer's skip table up to date."""
    world.tile_top = compute_tile_top(world.blocks)
    return world


def run(player: Player, world, act: Action, ticks: int) -> list[Pose]:
    poses = []
    for _ in range(ticks):
        player.step(world, act)
        poses.append(player.pose)
    return poses


def standing(x: float = 16.5, z: float = 16.5, yaw: float = 0.0) -> Player:
    player = Player(Pose(x, FLOOR_TOP, z, yaw, 0.0))
    player.on_ground = True
    return player


def test_gravity_accelerates_and_lands_on_the_floor():
    world = BoxWorld()
    player = Player(Pose(16.5, 15.0, 16.5))
    ys = [p.y for p in run(player, world, Action(), 60)]
    drops = -np.diff([15.0] + ys)
    assert drops[1] > drops[0] and drops[5] > drops[4] > drops[3]  # falling accelerates
    assert ys[-1] == pytest.approx(FLOOR_TOP)
    assert player.on_ground


def test_a_wall_stops_walking_and_the_player_slides_along_it():
    world = BoxWorld()
    world.blocks[20, FLOOR_TOP : FLOOR_TOP + 3, :] = Block.STONE  # wall at x = 20..21
    player = standing(yaw=90.0)  # facing east (+x)
    run(player, world, Action({"forward"}), 80)
    assert player.x == pytest.approx(20 - 0.3)
    # Walking diagonally into the wall keeps the z motion.
    player = standing(yaw=45.0)
    z0 = player.z
    run(player, world, Action({"forward"}), 80)
    assert player.x == pytest.approx(20 - 0.3)
    assert player.z < z0 - 3.0


def test_jump_peaks_near_one_and_a_quarter_blocks():
    world = BoxWorld()
    player = standing()
    run(player, world, Action(), 2)
    ys = [p.y for p in run(player, world, Action({"jump"}), 1) + run(player, world, Action(), 20)]
    assert max(ys) - FLOOR_TOP == pytest.approx(1.2522, abs=0.002)
    assert ys[-1] == pytest.approx(FLOOR_TOP)


def test_jump_onto_a_one_block_step_but_not_a_two_block_wall():
    world = BoxWorld()
    world.blocks[18:, FLOOR_TOP, :] = Block.STONE  # a 1-block step from x = 18
    player = standing(yaw=90.0)
    run(player, world, Action({"forward", "jump"}), 30)
    run(player, world, Action({"forward"}), 20)
    assert player.y == pytest.approx(FLOOR_TOP + 1) and player.x > 19.0

    world = BoxWorld()
    world.blocks[18:, FLOOR_TOP : FLOOR_TOP + 2, :] = Block.STONE  # a 2-block wall
    player = standing(yaw=90.0)
    run(player, world, Action({"forward", "jump"}), 40)
    assert player.x == pytest.approx(18 - 0.3) and player.y < FLOOR_TOP + 1.3


def test_walking_without_jumping_does_not_climb_a_step():
    world = BoxWorld()
    world.blocks[18:, FLOOR_TOP, :] = Block.STONE
    player = standing(yaw=90.0)
    run(player, world, Action({"forward"}), 40)
    assert player.x == pytest.approx(18 - 0.3) and player.y == pytest.approx(FLOOR_TOP)


@pytest.mark.parametrize(
    "keys, speed",
    [({"forward"}, 4.317), ({"forward", "sprint"}, 5.612), ({"forward", "sneak"}, 1.295), ({"back"}, 4.317),
     ({"left"}, 4.317), ({"forward", "right"}, 4.405)],  # diagonal: 2% faster, as in Minecraft
)
def test_ground_speeds_match_minecraft(keys, speed):
    world = BoxWorld(size=512)
    player = standing(x=10.5, z=10.5)
    poses = run(player, world, Action(keys), 60)
    a, b = poses[39], poses[59]
    measured = math.hypot(b.x - a.x, b.z - a.z) / 20 * 20  # blocks per tick * 20 ticks/s
    assert measured == pytest.approx(speed, rel=0.01)


def test_forward_moves_where_the_player_looks():
    world = BoxWorld()
    for yaw, (dx, dz) in [(0.0, (0, -1)), (90.0, (1, 0)), (180.0, (0, 1)), (270.0, (-1, 0))]:
        player = standing(yaw=yaw)
        run(player, world, Action({"forward"}), 10)
        assert np.sign(round(player.x - 16.5, 6)) == dx and np.sign(round(player.z - 16.5, 6)) == dz
    player = standing(yaw=0.0)
    run(player, world, Action({"right"}), 10)
    assert player.x > 17.0 and player.z == pytest.approx(16.5)


def test_sprint_needs_forward():
    world = BoxWorld()
    player = standing()
    run(player, world, Action({"sprint", "left"}), 5)
    assert not player.sprinting and player.fov == pytest.approx(FOV)
    run(player, world, Action({"sprint", "forward", "sneak"}), 5)
    assert not player.sprinting


def test_mouse_look_and_pitch_clamp():
    world = BoxWorld()
    player = standing()
    player.step(world, Action(camera=(30.0, 45.0)))
    assert (player.pitch, player.yaw) == (30.0, 45.0)
    player.step(world, Action(camera=(0.0, -90.0)))
    assert player.yaw == pytest.approx(315.0)
    run(player, world, Action(camera=(60.0, 0.0)), 3)
    assert player.pitch == PITCH_LIMIT
    run(player, world, Action(camera=(-90.0, 0.0)), 4)
    assert player.pitch == -PITCH_LIMIT


def test_sneaking_lowers_the_eye_and_sprinting_widens_the_view():
    world = BoxWorld()
    player = standing()
    assert player.eye[1] == pytest.approx(FLOOR_TOP + EYE_HEIGHT)
    run(player, world, Action({"sneak"}), 10)
    assert player.eye[1] == pytest.approx(FLOOR_TOP + SNEAK_EYE_HEIGHT, abs=0.01)
    run(player, world, Action(), 10)
    assert player.eye[1] == pytest.approx(FLOOR_TOP + EYE_HEIGHT, abs=0.01)
    fovs = []
    for _ in range(10):
        player.step(world, Action({"forward", "sprint"}))
        fovs.append(player.fov)
    assert FOV < fovs[0] < fovs[2] < FOV * SPRINT_FOV_FACTOR  # eased over a few ticks
    assert fovs[-1] == pytest.approx(FOV * SPRINT_FOV_FACTOR, abs=0.1)


def test_water_sinks_slowly_and_jump_swims_up():
    world = BoxWorld(height=32)
    world.blocks[:, FLOOR_TOP:20, :] = Block.WATER
    player = Player(Pose(16.5, 15.0, 16.5))
    ys = [p.y for p in run(player, world, Action(), 40)]
    assert 0.05 < ys[-21] - ys[-1] < 0.1 * 20  # sinking, but far slower than falling in air
    ys = [p.y for p in run(player, world, Action({"jump"}), 20)]
    assert ys[-1] > ys[0] + 0.5


def test_walking_bobs_the_hand_and_standing_still_does_not():
    world = BoxWorld()
    player = standing()
    run(player, world, Action(), 5)
    assert player.hand_bob == 0.0
    phases = []
    for _ in range(30):
        player.step(world, Action({"forward"}))
        phases.append(player.hand_bob)
    assert max(phases) - min(phases) > 3.0  # the phase sweeps round as the player walks
    run(player, world, Action(), 10)
    assert player.hand_bob == 0.0


def test_same_actions_give_the_same_poses():
    rng = np.random.default_rng(0)
    keys = ["forward", "back", "left", "right", "jump", "sneak", "sprint"]
    acts = [Action({k for k in keys if rng.random() < 0.3}, tuple(rng.uniform(-10, 10, 2))) for _ in range(200)]
    world_a, world_b = BoxWorld(), BoxWorld()
    world_a.blocks[20:22, FLOOR_TOP, 10:20] = Block.STONE
    world_b.blocks[20:22, FLOOR_TOP, 10:20] = Block.STONE
    pa, pb = standing(), standing()
    poses_a = [run(pa, world_a, a, 1)[0] for a in acts]
    poses_b = [run(pb, world_b, a, 1)[0] for a in acts]
    assert poses_a == poses_b
    assert len({(p.x, p.z) for p in poses_a}) > 100  # it did move around


def test_pose_rejects_bad_values():
    with pytest.raises(ValueError, match="finite"):
        Pose(float("nan"), 0, 0)
    with pytest.raises(ValueError, match="pitch"):
        Pose(0, 0, 0, 0, 95)


# ----- interaction: break and place, with the renderer's ray cast --------------------------


def walled_world() -> World:
    """A floor and a 3-block-high stone wall across z = 12, 3.5 blocks north of the player's eye."""
    world = BoxWorld()
    world.blocks[:, FLOOR_TOP : FLOOR_TOP + 3, 12] = Block.STONE
    return refresh(world)


def frame(world: World, player: Player) -> np.ndarray:
    return render(world, player.view(wrap=world.size), 48)


def turn_away_and_back(world: World, player: Player) -> None:
    run(player, world, Action(camera=(0.0, 30.0)), 6)
    run(player, world, Action(camera=(0.0, -30.0)), 6)


def test_attack_breaks_the_block_and_it_stays_broken():
    world = walled_world()
    player = standing(yaw=0.0)  # facing north, at the wall
    before = frame(world, player)
    info = player.step(world, Action({"attack"}))
    assert info.broken == (16, FLOOR_TOP + 1, 12) and info.broken_block == Block.STONE
    assert world.get(*info.broken) == Block.AIR
    run(player, world, Action(), SWING_TICKS)  # let the swing finish
    after = frame(world, player)
    turn_away_and_back(world, player)
    assert player.yaw == 0.0
    assert world.get(*info.broken) == Block.AIR
    again = frame(world, player)
    np.testing.assert_array_equal(again, after)
    centre = (slice(20, 28), slice(20, 28))
    assert np.abs(after[centre].astype(int) - before[centre].astype(int)).mean() > 10  # the hole shows


def test_holding_attack_breaks_one_block_per_swing():
    world = BoxWorld()
    world.blocks[:, FLOOR_TOP : FLOOR_TOP + 3, 6:13] = Block.STONE  # a thick wall
    player = standing(z=13.5, yaw=0.0)
    broken, swing = [], []
    for _ in range(3 * ATTACK_REPEAT_TICKS):
        broken.append(player.step(world, Action({"attack"})).broken)
        swing.append(player.hand_swing)
    assert all(s > 0 for s in swing)  # holding attack keeps the hand swinging, frame after frame
    assert [b for b in broken if b is not None] == [(16, FLOOR_TOP + 1, z) for z in (12, 11, 10)]
    assert broken[0] is not None and broken[ATTACK_REPEAT_TICKS] is not None and broken[1] is None


def test_use_places_a_block_that_stays():
    world = walled_world()
    player = standing(yaw=0.0)
    info = player.step(world, Action({"use"}))
    assert info.placed == (16, FLOOR_TOP + 1, 13)
    assert world.get(*info.placed) == PLACED_BLOCK
    run(player, world, Action(), SWING_TICKS)
    after = frame(world, player)
    turn_away_and_back(world, player)
    assert world.get(*info.placed) == PLACED_BLOCK
    np.testing.assert_array_equal(frame(world, player), after)


def test_use_never_places_a_block_inside_the_player():
    world = BoxWorld()
    player = standing()
    player.step(world, Action(camera=(-89.0, 0.0)))  # look straight down at the floor under the feet
    info = player.step(world, Action({"use"}))
    assert info.placed is None and info.swing_started
    assert world.get(16, FLOOR_TOP, 16) == Block.AIR


def test_bedrock_does_not_break():
    world = BoxWorld()
    world.blocks[:, FLOOR_TOP - 1, :] = Block.BEDROCK
    player = standing()
    player.step(world, Action(camera=(-89.0, 0.0)))
    info = player.step(world, Action({"attack"}))
    assert info.broken is None and world.get(16, FLOOR_TOP - 1, 16) == Block.BEDROCK


def test_the_hand_swings_even_when_nothing_is_hit():
    world = refresh(BoxWorld())
    player = standing()
    player.step(world, Action(camera=(60.0, 0.0)))  # look at the sky
    rest = frame(world, player)
    info = player.step(world, Action({"attack"}))
    assert info.swing_started and info.broken is None and player.hand_swing > 0
    swinging = frame(world, player)
    assert np.abs(swinging.astype(int) - rest.astype(int)).sum() > 0
    run(player, world, Action(), SWING_TICKS)
    assert player.hand_swing == 0.0
    np.testing.assert_array_equal(frame(world, player), rest)
