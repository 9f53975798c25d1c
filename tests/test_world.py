"""Terrain and World: determinism, biomes and their signature blocks, wrap-around, edits, spawn points."""

import time

import numpy as np
import pytest

from data.blocks import Block
from data.terrain import BIOMES, generate_terrain
from data.textures import build_atlas, build_mipmaps
from data.world import World, compute_tile_top

SIGNATURE = {
    "beach": {Block.SAND, Block.WATER, Block.LOG, Block.LEAVES},
    "desert": {Block.SAND, Block.SANDSTONE, Block.CACTUS},
    "forest": {Block.GRASS, Block.LOG, Block.LEAVES},
    "hills": {Block.GRASS, Block.STONE, Block.SNOW},
    "icy": {Block.SNOW, Block.ICE, Block.LOG, Block.SPRUCE_LEAVES},
    "mushroom": {Block.MYCELIUM, Block.MUSHROOM_STEM, Block.RED_MUSHROOM, Block.BROWN_MUSHROOM},
    "plain": {Block.GRASS, Block.LOG, Block.LEAVES},
    "river": {Block.GRASS, Block.WATER, Block.SAND},
}
NOT_IN = {  # blocks that would make a biome look like another one
    "desert": {Block.GRASS, Block.WATER},
    "icy": {Block.GRASS, Block.LEAVES},
    "mushroom": {Block.GRASS, Block.LEAVES},
    "plain": {Block.SAND, Block.SNOW},
}


@pytest.fixture(scope="module")
def worlds() -> dict[str, np.ndarray]:
    return {biome: generate_terrain(0, biome) for biome in BIOMES}


def surface_heights(blocks: np.ndarray) -> np.ndarray:
    """y of the highest non-air, non-feature block per column: ground level, (S, S)."""
    ground = np.isin(blocks, [Block.LOG, Block.LEAVES, Block.CACTUS, Block.MUSHROOM_STEM, Block.RED_MUSHROOM,
                              Block.BROWN_MUSHROOM, Block.AIR], invert=True)  # fmt: skip
    return blocks.shape[1] - 1 - np.argmax(ground[:, ::-1, :], axis=1)


def test_atlas_shape_and_distinct_textures():
    atlas = build_atlas()
    assert atlas.shape == (len(Block), 3, 16, 16, 3) and atlas.dtype == np.uint8
    means = atlas[1:].reshape(len(Block) - 1, 3, -1).mean(axis=2)
    assert means.min() > 20  # no block is left black
    grass = atlas[Block.GRASS]
    assert grass[0, :, :, 1].mean() > grass[0, :, :, 0].mean()  # green top
    assert grass[1, 0, :, 1].mean() > grass[1, 15, :, 1].mean()  # side: green fringe over dirt


def test_mipmaps_halve_and_average():
    atlas = build_atlas()
    levels = build_mipmaps(atlas)
    assert [level.shape[2] for level in levels] == [16, 8, 4, 2, 1]
    assert all(level.dtype == np.uint8 and level.shape[:2] == atlas.shape[:2] for level in levels)
    mean = atlas.reshape(*atlas.shape[:2], -1, 3).mean(axis=2)
    assert np.abs(levels[-1][:, :, 0, 0].astype(float) - mean).max() <= 2.0  # 1x1 level = average colour


def test_same_seed_same_world_different_seed_different_world():
    a, b, c = generate_terrain(3, "forest", 64), generate_terrain(3, "forest", 64), generate_terrain(4, "forest", 64)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("biome", BIOMES)
def test_every_biome_has_its_signature_blocks(worlds, biome):
    blocks = worlds[biome]
    assert blocks.shape == (256, 64, 256) and blocks.dtype == np.uint8
    present = {Block(b) for b in np.unique(blocks)}
    assert SIGNATURE[biome] <= present, f"{biome} lacks {SIGNATURE[biome] - present}"
    assert not (NOT_IN.get(biome, set()) & present), f"{biome} has {NOT_IN[biome] & present}"
    assert (blocks[:, 0, :] == Block.BEDROCK).all()
    assert (blocks[:, 1, :] != Block.AIR).all()  # solid underground, no holes to fall through


def test_biome_relief_and_density(worlds):
    relief = {b: np.ptp(surface_heights(w)) for b, w in worlds.items()}
    assert relief["hills"] >= 25 and relief["plain"] <= 6
    logs = {b: int((w == Block.LOG).sum()) for b, w in worlds.items()}
    assert logs["forest"] > 5 * logs["plain"]  # dense trees versus a few
    assert not (worlds["icy"][:, 24, :] == Block.WATER).any()  # lakes are frozen over
    water_share = {b: float((w[:, 24, :] == Block.WATER).mean()) for b, w in worlds.items()}
    assert 0.2 < water_share["beach"] < 0.8  # sea and shore
    assert 0.02 < water_share["river"] < 0.25  # a river, not a lake


def test_terrain_wraps_without_a_seam(worlds):
    for biome in ("hills", "forest", "beach"):
        h = surface_heights(worlds[biome]).astype(int)
        inner = max(np.abs(np.diff(h, axis=0)).max(), np.abs(np.diff(h, axis=1)).max())
        assert np.abs(h[0] - h[-1]).max() <= inner
        assert np.abs(h[:, 0] - h[:, -1]).max() <= inner


def test_generation_is_fast():
    start = time.perf_counter()
    generate_terrain(1, "forest")  # the biome with the most features
    assert time.perf_counter() - start < 1.0


def test_unknown_biome_and_tiny_world_are_rejected():
    with pytest.raises(ValueError, match="unknown biome"):
        generate_terrain(0, "volcano")
    with pytest.raises(ValueError, match="too small"):
        generate_terrain(0, "plain", size=8)


def test_world_generate_picks_a_biome_from_the_seed():
    a, b = World.generate(5, size=32), World.generate(5, size=32)
    assert a.biome in BIOMES and a.biome == b.biome
    assert len({World.generate(s, size=32).biome for s in range(16)}) >= 4


def test_get_wraps_in_x_and_z_and_has_bedrock_below_air_above():
    world = World.generate(0, "hills", size=32)
    s, h = world.size, world.height
    for x, y, z in [(0, 30, 0), (5, 20, 31), (31, 40, 7)]:
        expected = world.blocks[x, y, z]
        assert world.get(x + s, y, z) == expected
        assert world.get(x - s, y, z - 3 * s) == expected
    assert world.get(3, -1, 3) == Block.BEDROCK
    assert world.get(3, h, 3) == Block.AIR
    assert world.is_solid(3, -5, 3) and not world.is_solid(3, h + 5, 3)


def test_set_persists_and_keeps_the_render_height_bound():
    world = World.generate(0, "plain", size=32)
    world.set(33, 60, -1, Block.PLANKS)  # wraps to (1, 60, 31)
    assert world.blocks[1, 60, 31] == Block.PLANKS and world.get(1, 60, 31) == Block.PLANKS
    assert world.surface_y(1, 31) == 61
    assert (world.tile_top >= compute_tile_top(world.blocks)).all()
    world.set(1, 60, 31, Block.AIR)
    assert world.get(1, 60, 31) == Block.AIR
    assert (world.tile_top >= compute_tile_top(world.blocks)).all()
    with pytest.raises(ValueError, match="y=64"):
        world.set(0, 64, 0, Block.STONE)


def test_spawn_point_is_on_dry_land_near_the_middle_and_deterministic():
    for biome in ("beach", "river", "forest"):
        world = World.generate(2, biome, size=128)
        x, y, z = world.spawn_point(7)
        assert (x, y, z) == world.spawn_point(np.random.default_rng(7))
        assert abs(x - 64) <= 64 and abs(z - 64) <= 64
        below = world.get(int(x), int(y) - 1, int(z))
        assert world.is_solid(int(x), int(y) - 1, int(z)) and below not in (Block.LEAVES, Block.WATER)
        assert world.get(int(x), int(y), int(z)) == Block.AIR and world.get(int(x), int(y) + 1, int(z)) == Block.AIR
        assert y == world.surface_y(int(x), int(z))


def test_no_trees_grow_under_water(worlds):
    for biome in ("beach", "river", "hills"):
        below_sea = worlds[biome][:, : 24 + 1, :]
        assert not np.isin(below_sea, [Block.LOG, Block.LEAVES]).any(), biome
