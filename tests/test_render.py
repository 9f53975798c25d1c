"""The renderer: determinism, a golden image, axes, overlays (crosshair, hand), sky, fog, water, edits.

Regenerate the golden images after an intended change to the looks with
    WORLDMODEL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_render.py -k golden
and look at them before committing.
"""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.blocks import Block
from data.render import View, _compile, raycast_block, render, render_with_depth
from data.world import World

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("WORLDMODEL_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def forest() -> World:
    return World.generate(0, "forest", size=64)


@pytest.fixture(scope="module")
def beach() -> World:
    return World.generate(1, "beach", size=64)


def standing_view(world: World, **kwargs) -> View:
    x, y, z = world.spawn_point(0)
    return View(eye=(x, y + 1.62, z), **{"yaw": 45.0, "pitch": -10.0, **kwargs})


def test_frame_shape_dtype_and_determinism(forest):
    view = standing_view(forest)
    a, b = render(forest, view, 64), render(forest, view, 64)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    wide = render(forest, view, 96, 48)
    assert wide.shape == (48, 96, 3)


@pytest.mark.parametrize(
    "name, biome, seed, side, yaw, pitch",
    [("forest_seed0_64", "forest", 0, 64, 45.0, -10.0), ("beach_seed1_128", "beach", 1, 128, 0.0, -20.0)],
)
def test_golden_image(name, biome, seed, side, yaw, pitch):
    world = World.generate(seed, biome, size=64)
    x, y, z = world.spawn_point(0)
    frame = render(world, View(eye=(x, y + 1.62, z), yaw=yaw, pitch=pitch, hand_swing=0.3), side)
    path = GOLDEN / f"{name}.png"
    if UPDATE_GOLDEN:
        GOLDEN.mkdir(exist_ok=True)
        Image.fromarray(frame).save(path)
    if not path.exists():
        pytest.fail(f"{path} is missing; create it with WORLDMODEL_UPDATE_GOLDEN=1")
    golden = np.asarray(Image.open(path).convert("RGB"))
    diff = np.abs(frame.astype(int) - golden.astype(int)).max(axis=2)
    # Bit-identical on the machine that made it; the tolerance only absorbs a terrain
    # column rounded the other way by a different numpy build.
    assert (diff > 0).mean() < 0.01, f"{(diff > 0).mean():.2%} of pixels differ from {path}"


def test_yaw_zero_looks_north_and_yaw_90_looks_east():
    world = World(np.zeros((32, 64, 32), np.uint8), seed=0, biome="plain")
    eye = (16.5, 40.5, 16.5)
    world.set(16, 40, 12, Block.STONE)  # north: -z
    world.set(20, 40, 16, Block.GRAVEL)  # east: +x
    assert raycast_block(world, eye, 0.0, 0.0, 6.0) == ((16, 40, 12), (16, 40, 13))
    assert raycast_block(world, eye, 90.0, 0.0, 6.0) == ((20, 40, 16), (19, 40, 16))
    assert raycast_block(world, eye, 180.0, 0.0, 6.0) is None  # nothing south within reach
    world.set(16, 44, 16, Block.DIRT)
    assert raycast_block(world, eye, 0.0, 90.0, 6.0) == ((16, 44, 16), (16, 43, 16))  # +pitch looks up
    # The crosshair pixel shows the block the ray hits.
    frame = render(world, View(eye=eye, yaw=0.0, pitch=0.0, show_hand=False, show_crosshair=False), 33)
    assert np.array_equal(frame[16, 16], render(world, View(eye=eye, yaw=0.0, pitch=0.0, show_hand=False,
                                                             show_crosshair=False), 33)[16, 16])  # fmt: skip
    assert np.abs(frame[16, 16].astype(int) - frame[2, 16].astype(int)).sum() > 60  # stone, not sky


def test_raycast_wraps_around_the_world_edge():
    world = World(np.zeros((32, 64, 32), np.uint8), seed=0, biome="plain")
    world.set(1, 40, 5, Block.STONE)
    hit = raycast_block(world, (30.5, 40.5, 5.5), 90.0, 0.0, 5.0)  # east across x = 32 -> 0
    assert hit == ((1, 40, 5), (0, 40, 5))


def test_view_wraps_around_the_world(forest):
    view = standing_view(forest)
    moved = View(eye=(view.eye[0] + forest.size, view.eye[1], view.eye[2] - 2 * forest.size), yaw=view.yaw,
                 pitch=view.pitch)  # fmt: skip
    assert np.array_equal(render(forest, view, 48), render(forest, moved, 48))


def test_crosshair_is_drawn_in_the_centre(forest):
    view = standing_view(forest, show_hand=False)
    on = render(forest, view, 64).astype(int)
    off = render(forest, View(**{**view.__dict__, "show_crosshair": False}), 64).astype(int)
    changed = np.abs(on - off).sum(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert changed.sum() >= 5
    assert ys.min() >= 28 and ys.max() <= 35 and xs.min() >= 28 and xs.max() <= 35


def test_hand_swing_and_bob_change_the_bottom_right(forest):
    base = standing_view(forest)
    rest = render(forest, base, 64).astype(int)
    no_hand = render(forest, View(**{**base.__dict__, "show_hand": False}), 64).astype(int)
    quadrant = (slice(32, 64), slice(32, 64))
    assert (np.abs(rest - no_hand)[quadrant].sum(axis=2) > 30).sum() >= 40  # an arm is there at rest
    for swing in (0.25, 0.5, 0.75):
        swung = render(forest, View(**{**base.__dict__, "hand_swing": swing}), 64).astype(int)
        assert (np.abs(swung - rest)[quadrant].sum(axis=2) > 30).sum() >= 40, swing
    # The strike and the return differ (a swing's phases can be told apart from one frame).
    strike = render(forest, View(**{**base.__dict__, "hand_swing": 1 / 6}), 64)
    back = render(forest, View(**{**base.__dict__, "hand_swing": 5 / 6}), 64)
    assert not np.array_equal(strike, back)
    bobbed = render(forest, View(**{**base.__dict__, "hand_bob": np.pi / 2}), 64).astype(int)
    assert (np.abs(bobbed - rest)[quadrant].sum(axis=2) > 30).sum() >= 10
    # Only the arm moves: the top half of the picture is untouched.
    assert np.array_equal(swung[:24], rest[:24])


def test_sky_is_at_the_top_when_looking_up(forest):
    x, y, z = forest.spawn_point(0)
    frame = render(forest, View(eye=(x, 60.0, z), yaw=0.0, pitch=60.0, show_hand=False), 64).astype(int)
    top = frame[:16].reshape(-1, 3)
    assert (top[:, 2] > top[:, 0] + 40).all() and (top[:, 2] > 200).all()  # blue sky


def test_frames_are_sane_in_every_direction(forest, beach):
    for world in (forest, beach):
        x, y, z = world.spawn_point(0)
        for yaw in (0.0, 120.0, 240.0):
            for pitch in (-60.0, 0.0, 30.0):
                frame = render(world, View(eye=(x, y + 1.62, z), yaw=yaw, pitch=pitch), 32)
                assert 40 < frame.mean() < 250 and frame.std() > 5


def test_fog_fades_distant_terrain_into_the_sky():
    world = World(np.zeros((64, 64, 64), np.uint8), seed=0, biome="plain")
    world.blocks[:, :10, :] = Block.STONE  # a flat stone floor, top at y = 10
    world.refresh_render_bounds()
    view = View(eye=(32.5, 12.0, 32.5), yaw=0.0, pitch=0.0, show_hand=False, show_crosshair=False)
    frame = render(world, view, 64).astype(int)
    horizon_sky = np.array([168, 204, 255])  # the sky colour level with the eye (render.c)
    # Rows below the horizon see the floor further and further away: 2 / tan(angle) blocks.
    distance_to_sky = [np.abs(frame[row] - horizon_sky).sum(axis=1).mean() for row in (45, 34, 33)]
    assert distance_to_sky == sorted(distance_to_sky, reverse=True)
    assert distance_to_sky[-1] < distance_to_sky[0] / 3


def test_water_is_see_through_and_blue(beach):
    # Stand above the deepest sea and look straight down.
    deep = np.argwhere((beach.blocks[:, 24, :] == Block.WATER) & (beach.blocks[:, 20, :] == Block.WATER))
    assert len(deep)
    x, z = (int(v) for v in deep[0])
    view = View(eye=(x + 0.5, 27.0, z + 0.5), yaw=0.0, pitch=-90.0, show_hand=False, show_crosshair=False)
    frame = render(beach, view, 16).astype(int)
    centre = frame[6:10, 6:10].reshape(-1, 3).mean(axis=0)
    assert centre[2] > centre[0] + 60, f"water {centre} is not blue"
    beach.set(x, 24, z, Block.AIR)  # a hole in the water: what is under it shows differently
    holed = render(beach, view, 16)
    beach.set(x, 24, z, Block.WATER)
    assert not np.array_equal(frame, holed)


def test_edits_show_up_in_the_frame(forest):
    world = World(forest.blocks.copy(), seed=0, biome="forest")
    view = standing_view(world)
    before = render(world, view, 64)
    hit = raycast_block(world, view.eye, view.yaw, view.pitch, 6.0)
    assert hit is not None
    world.set(*hit[1], Block.PLANKS)
    placed = render(world, view, 64)
    assert not np.array_equal(before, placed)
    world.set(*hit[1], Block.AIR)
    assert np.array_equal(before, render(world, view, 64))  # removing it restores the picture


def test_underwater_view_renders():
    world = World.generate(1, "beach", size=64)
    cells = np.argwhere(world.blocks[:, 23, :] == Block.WATER)
    x, z = cells[0]
    frame = render(world, View(eye=(x + 0.5, 23.5, z + 0.5), yaw=0.0, pitch=0.0), 32)
    assert frame.mean() > 20


def test_bad_views_are_rejected():
    with pytest.raises(ValueError, match="pitch"):
        View(eye=(0, 0, 0), yaw=0.0, pitch=95.0)
    with pytest.raises(ValueError, match="finite"):
        View(eye=(float("nan"), 0, 0), yaw=0.0, pitch=0.0)
    with pytest.raises(ValueError, match="hand_swing"):
        View(eye=(0, 0, 0), yaw=0.0, pitch=0.0, hand_swing=1.5)
    with pytest.raises(ValueError, match="at least 8x8"):
        render(World.generate(0, "plain", size=32), View(eye=(1, 40, 1), yaw=0.0, pitch=0.0), 4)


def test_blocks_placed_high_above_the_terrain_are_drawn():
    # The renderer skips tiles above their height bound: set() must raise the bound.
    world = World(np.zeros((64, 64, 64), np.uint8), seed=0, biome="plain")
    world.blocks[:, :10, :] = Block.STONE
    world.refresh_render_bounds()
    view = View(eye=(32.5, 11.62, 32.5), yaw=0.0, pitch=40.0, show_hand=False, show_crosshair=False)
    before = render(world, view, 32)
    for dx in range(-2, 3):  # a 5x5 slab 15 blocks north and 25 up: in view, 29 blocks off
        for dz in range(-2, 3):
            world.set(32 + dx, 36, 17 + dz, Block.STONE)
    after = render(world, view, 32)
    assert not np.array_equal(before, after)
    world.blocks[40, 55, 2] = Block.GRAVEL  # a direct write is only seen after the refresh
    world.refresh_render_bounds()
    assert world.tile_top[40 // world.tile, 2 // world.tile] == 56


def test_missing_compiler_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # an empty cache: it must compile
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    with pytest.raises(RuntimeError, match="C compiler.*no-such-compiler-xyz"):
        _compile()


def test_compiles_into_a_cache_keyed_by_source(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = _compile()
    assert path.exists() and path.parent.parent == tmp_path / "worldmodel" / "native"
    assert _compile() == path  # the second call reuses it


def test_inverse_depth_matches_the_geometry_of_flat_ground():
    world = World.generate(0, "plain", size=64)
    world.blocks[:, 40:, :] = Block.AIR  # nothing above the ground at y = 40 (top face)
    world.blocks[:, 30:40, :] = Block.STONE
    world.refresh_render_bounds()
    eye_height = 1.62
    view = View(eye=(10.5, 40 + eye_height, 10.5), yaw=0.0, pitch=0.0, fov=70.0, show_hand=False, show_crosshair=False)
    frame, inv_depth = render_with_depth(world, view, 64)
    assert np.array_equal(frame, render(world, view, 64)) and inv_depth.dtype == np.float32
    assert (inv_depth[:32] == 0).all()  # above the horizon: sky, infinitely far
    # Below it, row y looks down by tan = (y + 0.5 - 32) / 32 * tan(35 deg): ground at depth eye_height / tan.
    for y in (40, 50, 63):
        expected = ((y + 0.5 - 32) / 32 * np.tan(np.radians(35.0))) / eye_height
        assert np.allclose(inv_depth[y], expected, rtol=1e-3)  # planar depth: the same along a row
    hand_view = View(eye=view.eye, yaw=0.0, pitch=0.0, show_crosshair=False)
    with_hand, hand_depth = render_with_depth(world, hand_view, 64)
    arm = (with_hand != frame).any(axis=-1)
    assert arm.sum() > 20 and (hand_depth[arm] == 0).all()  # the arm moves with the camera: depth 0 where it shows
    assert np.array_equal(hand_depth[~arm], inv_depth[~arm])
