"""The Game facade and the fixed start scenes."""

import numpy as np
import pytest

from data.actions import Action
from data.blocks import SOLID
from data.game import Game
from data.physics import Pose
from data.render import raycast_block
from data.scenes import BIOMES, OPEN_DISTANCE, SCENES, Scene, get_scene
from data.world import World


def actions(n: int = 40) -> list[Action]:
    rng = np.random.default_rng(0)
    keys = ["forward", "left", "jump", "attack", "use", "sprint"]
    return [Action({k for k in keys if rng.random() < 0.3}, tuple(rng.uniform(-8, 8, 2))) for _ in range(n)]


def test_game_is_deterministic_for_a_seed_and_actions():
    a, b = Game(7, "forest", size=32), Game(7, "forest", size=32)
    frames_a = [a.reset()] + [a.step(act) for act in actions()]
    frames_b = [b.reset()] + [b.step(act) for act in actions()]
    assert all(np.array_equal(x, y) for x, y in zip(frames_a, frames_b))
    assert a.pose == b.pose
    assert frames_a[0].shape == (32, 32, 3) and frames_a[0].dtype == np.uint8
    c = Game(8, "forest", size=32)
    assert not np.array_equal(c.reset(), frames_a[0])


def test_reset_undoes_edits_and_returns_to_the_start():
    game = Game(3, "plain", size=32)
    first = game.reset()
    game.step(Action(camera=(-60.0, 0.0)))  # look at the ground in front
    info = game.player.step(game.world, Action({"attack"}))
    assert info.broken is not None
    assert not np.array_equal(game.world.blocks, game._initial_blocks)
    again = game.reset()
    assert np.array_equal(again, first) and game.pose == game.start_pose
    assert game.world.get(*info.broken) != 0


def test_observe_renders_any_size_and_pose_can_be_given():
    pose = Pose(100.5, 50.0, 100.5, 90.0, -10.0)
    game = Game(1, "hills", size=16, pose=pose)
    assert game.pose == pose and game.fps == 20
    assert game.observe().shape == (16, 16, 3)
    assert game.observe(48).shape == (48, 48, 3)
    with pytest.raises(ValueError, match="frame size"):
        Game(1, "hills", size=4)


def test_scenes_cover_every_biome_four_times():
    assert len(SCENES) == 32 and len({s.name for s in SCENES}) == 32
    assert sorted({s.biome for s in SCENES}) == sorted(BIOMES)
    assert all(sum(s.biome == b for s in SCENES) == 4 for b in BIOMES)
    assert get_scene("forest_2").biome == "forest"
    with pytest.raises(ValueError, match="unknown scene"):
        get_scene("moon_0")
    with pytest.raises(ValueError, match="unknown biome"):
        Scene("x", 1, "moon")


def check_scene(scene: Scene) -> None:
    pose = scene.pose
    world = World.generate(scene.seed, scene.biome)
    x, y, z = int(np.floor(pose.x)), int(round(pose.y)), int(np.floor(pose.z))
    assert SOLID[world.get(x, y - 1, z)] and not SOLID[world.get(x, y, z)] and not SOLID[world.get(x, y + 1, z)]
    assert raycast_block(world, (pose.x, pose.y + 1.62, pose.z), pose.yaw, 0.0, OPEN_DISTANCE) is None
    image = scene.image(32)
    assert image.shape == (32, 32, 3) and image.std() > 10  # not a blank wall


def test_a_few_scenes_stand_on_ground_facing_open_space():
    for name in ("beach_0", "forest_1", "river_3"):
        check_scene(get_scene(name))


@pytest.mark.slow
def test_every_scene_stands_on_ground_facing_open_space():
    for scene in SCENES:
        check_scene(scene)
