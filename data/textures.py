"""Minecraft-like 16x16 block textures, made by code.

`build_atlas()` returns one uint8 array `(NUM_BLOCKS, 3, 16, 16, 3)`: for each block
id (data/blocks.py) three faces, [top, side, bottom], each a 16x16 RGB image whose
row 0 is the top of the face. The renderer indexes it directly, so the layout is a
contract. Every texture comes from one fixed-seed RNG: the atlas is the same on every
machine and every run.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from data.blocks import NUM_BLOCKS, Block

TEX = 16  # texture side in pixels
TOP, SIDE, BOTTOM = 0, 1, 2
ATLAS_SEED = 1234


def _noisy(rng: np.random.Generator, colour: tuple[int, int, int], spread: float) -> np.ndarray:
    """A 16x16 tile of `colour` with per-pixel brightness noise (the Minecraft speckle)."""
    scale = 1.0 + rng.uniform(-spread, spread, (TEX, TEX, 1))
    return np.asarray(colour, np.float32)[None, None, :] * scale


def _blotches(rng: np.random.Generator, tile: np.ndarray, colour: tuple[int, int, int], count: int, size: int) -> None:
    """Paint `count` small square blotches of `colour` (with noise) into `tile` in place."""
    for _ in range(count):
        x, y = rng.integers(0, TEX, 2)
        w, h = rng.integers(1, size + 1, 2)
        ys, xs = (np.arange(y, y + h) % TEX), (np.arange(x, x + w) % TEX)
        tile[np.ix_(ys, xs)] = np.asarray(colour, np.float32) * rng.uniform(0.9, 1.1)


def _grass_top(rng):
    return _noisy(rng, (95, 159, 53), 0.18)


def _dirt(rng):
    tile = _noisy(rng, (134, 96, 67), 0.15)
    _blotches(rng, tile, (105, 75, 52), 10, 2)
    _blotches(rng, tile, (160, 120, 85), 6, 1)
    return tile


def _grass_side(rng):
    tile = _dirt(rng)
    # A green fringe that hangs down unevenly from the top edge.
    depth = rng.integers(2, 5, TEX)
    green = _grass_top(rng)
    for x in range(TEX):
        tile[: depth[x], x] = green[: depth[x], x]
    return tile


def _stone(rng):
    tile = _noisy(rng, (125, 125, 125), 0.12)
    _blotches(rng, tile, (100, 100, 100), 12, 3)
    _blotches(rng, tile, (145, 145, 145), 6, 2)
    return tile


def _cobblestone(rng):
    tile = _noisy(rng, (120, 120, 120), 0.15)
    # Rounded stones separated by dark mortar lines on an irregular grid.
    for y in (0, 5, 11):
        tile[y, :] = (70, 70, 70)
    for y0, y1 in ((0, 5), (5, 11), (11, 16)):
        for x in rng.choice(TEX, 3, replace=False):
            tile[y0:y1, x] = (70, 70, 70)
    return tile


def _sand(rng):
    return _noisy(rng, (219, 207, 163), 0.07)


def _sandstone_side(rng):
    tile = _noisy(rng, (216, 203, 155), 0.05)
    tile[11:13] *= 0.85
    tile[0:2] *= 1.05
    tile[14:] *= 0.9
    return tile


def _gravel(rng):
    tile = _noisy(rng, (132, 126, 124), 0.2)
    _blotches(rng, tile, (95, 90, 90), 14, 2)
    _blotches(rng, tile, (170, 160, 160), 8, 2)
    return tile


def _water(rng):
    tile = _noisy(rng, (47, 82, 200), 0.08)
    for y in range(0, TEX, 4):  # faint ripples
        tile[y, rng.integers(0, 8) : rng.integers(8, 16)] *= 1.15
    return tile


def _snow(rng):
    return _noisy(rng, (240, 248, 250), 0.04)


def _snow_side(rng):
    tile = _dirt(rng)
    depth = rng.integers(3, 6, TEX)
    white = _snow(rng)
    for x in range(TEX):
        tile[: depth[x], x] = white[: depth[x], x]
    return tile


def _ice(rng):
    tile = _noisy(rng, (150, 185, 245), 0.05)
    for _ in range(4):  # a few light cracks
        y, x = rng.integers(0, TEX, 2)
        tile[y, x : x + 4] = (200, 225, 255)
    return tile


def _log_side(rng):
    tile = _noisy(rng, (102, 81, 50), 0.1)
    for x in range(0, TEX, 3):  # vertical bark grooves
        tile[:, (x + rng.integers(0, 2)) % TEX] *= 0.7
    return tile


def _log_top(rng):
    tile = _noisy(rng, (170, 140, 88), 0.06)
    yy, xx = np.mgrid[0:TEX, 0:TEX] + 0.5
    r = np.hypot(yy - 8, xx - 8)
    tile[(r.astype(int) % 3) == 0] *= 0.8  # growth rings
    tile[r > 7] = _noisy(rng, (102, 81, 50), 0.1)[r > 7]  # bark rim
    return tile


def _leaves(rng):
    tile = _noisy(rng, (58, 120, 35), 0.3)
    holes = rng.random((TEX, TEX)) < 0.12
    tile[holes] *= 0.45  # dark gaps between the leaves
    return tile


def _spruce_side(rng):
    tile = _noisy(rng, (40, 78, 52), 0.3)
    tile[rng.random((TEX, TEX)) < 0.15] *= 0.45  # gaps between the needles
    tile[rng.random((TEX, TEX)) < 0.08] = (235, 242, 245)  # a dusting of snow
    tile[:2][rng.random((2, TEX)) < 0.6] = (240, 246, 248)  # snow resting on the top edge
    return tile


def _spruce_top(rng):
    tile = _snow(rng)
    tile[rng.random((TEX, TEX)) < 0.3] = (40, 78, 52)  # needles showing through the snow
    return tile


def _cactus_side(rng):
    tile = _noisy(rng, (88, 140, 50), 0.08)
    for x in (1, 5, 10, 14):
        tile[:, x] *= 0.75  # ribs
    for _ in range(8):  # spines
        y, x = rng.integers(0, TEX, 2)
        tile[y, x] = (230, 230, 180)
    return tile


def _cactus_top(rng):
    tile = _noisy(rng, (100, 155, 60), 0.06)
    tile[[0, -1], :] *= 0.7
    tile[:, [0, -1]] *= 0.7
    return tile


def _mycelium_top(rng):
    tile = _noisy(rng, (112, 96, 112), 0.15)
    _blotches(rng, tile, (140, 120, 140), 10, 1)
    return tile


def _mycelium_side(rng):
    tile = _dirt(rng)
    depth = rng.integers(2, 4, TEX)
    purple = _mycelium_top(rng)
    for x in range(TEX):
        tile[: depth[x], x] = purple[: depth[x], x]
    return tile


def _stem(rng):
    tile = _noisy(rng, (210, 205, 190), 0.05)
    for x in range(0, TEX, 4):
        tile[:, x] *= 0.9
    return tile


def _red_cap(rng):
    tile = _noisy(rng, (190, 30, 30), 0.08)
    for _ in range(5):  # white spots
        y, x = rng.integers(0, TEX - 3, 2)
        tile[y : y + 3, x : x + 3] = (235, 230, 225)
    return tile


def _brown_cap(rng):
    tile = _noisy(rng, (145, 108, 80), 0.08)
    _blotches(rng, tile, (125, 90, 65), 6, 2)
    return tile


def _planks(rng):
    tile = _noisy(rng, (162, 130, 78), 0.06)
    for y in (3, 7, 11, 15):  # board edges
        tile[y] *= 0.65
    for y0, x in ((0, 5), (4, 12), (8, 3), (12, 9)):  # board ends
        tile[y0 : y0 + 3, x] *= 0.7
    return tile


def _bedrock(rng):
    tile = _noisy(rng, (85, 85, 85), 0.2)
    _blotches(rng, tile, (40, 40, 40), 14, 3)
    _blotches(rng, tile, (140, 140, 140), 6, 2)
    return tile


def _faces(top, side=None, bottom=None):
    """A texture recipe: functions for [top, side, bottom]; side and bottom default to top."""
    side = side or top
    bottom = bottom or top
    return (top, side, bottom)


RECIPES = {
    Block.GRASS: _faces(_grass_top, _grass_side, _dirt),
    Block.DIRT: _faces(_dirt),
    Block.STONE: _faces(_stone),
    Block.SAND: _faces(_sand),
    Block.WATER: _faces(_water),
    Block.SNOW: _faces(_snow, _snow_side, _dirt),
    Block.ICE: _faces(_ice),
    Block.LOG: _faces(_log_top, _log_side, _log_top),
    Block.LEAVES: _faces(_leaves),
    Block.CACTUS: _faces(_cactus_top, _cactus_side, _cactus_top),
    Block.MYCELIUM: _faces(_mycelium_top, _mycelium_side, _dirt),
    Block.MUSHROOM_STEM: _faces(_stem),
    Block.RED_MUSHROOM: _faces(_red_cap),
    Block.BROWN_MUSHROOM: _faces(_brown_cap),
    Block.PLANKS: _faces(_planks),
    Block.BEDROCK: _faces(_bedrock),
    Block.GRAVEL: _faces(_gravel),
    Block.SANDSTONE: _faces(_sand, _sandstone_side, _sand),
    Block.COBBLESTONE: _faces(_cobblestone),
    Block.SPRUCE_LEAVES: _faces(_spruce_top, _spruce_side, _spruce_side),
}


@lru_cache(maxsize=1)
def _cached_atlas() -> np.ndarray:
    rng = np.random.default_rng(ATLAS_SEED)
    atlas = np.zeros((NUM_BLOCKS, 3, TEX, TEX, 3), np.uint8)  # AIR stays black; it is never drawn
    for block in Block:
        if block == Block.AIR:
            continue
        if block not in RECIPES:
            raise ValueError(f"data/textures.py: block {block.name} has no texture recipe")
        for face, recipe in enumerate(RECIPES[block]):
            atlas[block, face] = np.clip(np.rint(recipe(rng)), 0, 255).astype(np.uint8)
    atlas.setflags(write=False)
    return atlas


def build_atlas() -> np.ndarray:
    """The texture atlas, uint8 `(NUM_BLOCKS, 3 faces [top, side, bottom], 16, 16, 3)`, C-contiguous."""
    return _cached_atlas()


MIP_LEVELS = 5  # 16x16, 8x8, 4x4, 2x2, 1x1


def build_mipmaps(atlas: np.ndarray) -> list[np.ndarray]:
    """The atlas at 16, 8, 4, 2 and 1 pixels a side, each level the 2x2 box average of the one before.

    The renderer samples a smaller level the farther a face is, so one screen pixel never
    covers many texels: distant grass is a calm green, not noise that shimmers as the
    camera moves (that shimmer is all a world model would learn to reproduce).
    """
    levels = [atlas]
    level = atlas.astype(np.float32)
    for _ in range(MIP_LEVELS - 1):
        nb, faces, h, w, c = level.shape
        level = level.reshape(nb, faces, h // 2, 2, w // 2, 2, c).mean(axis=(3, 5))
        levels.append(np.clip(np.rint(level), 0, 255).astype(np.uint8))
    return levels
