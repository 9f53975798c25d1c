"""Procedural terrain: the eight biomes, from a seed.

`generate_terrain(seed, biome, size, height)` returns a uint8 voxel array indexed
[x, y, z] (y up) of block ids from data/blocks.py. The world is a torus: every noise
field is periodic over `size`, so x = size - 1 meets x = 0 with no seam, and trees
that straddle the edge wrap around.

How a world is made, vectorised with numpy:
1. A height field per biome from periodic fractal value noise (plus a carved river
   or shoreline where the biome has one).
2. Columns filled from the height field: bedrock at y = 0, stone, a few blocks of
   filler (dirt, sand, sandstone), a top block (grass, sand, snow, mycelium), water up
   to the sea level.
3. Features stamped on the surface: trees, cacti, giant mushrooms, ice.

The biomes are modelled on GameWorld Score's eight; each has signature blocks that
tests check (e.g. a desert has cacti, a mushroom biome has mycelium and caps).
"""

from __future__ import annotations

import zlib

import numpy as np

from data.blocks import Block

BIOMES: tuple[str, ...] = ("beach", "desert", "forest", "hills", "icy", "mushroom", "plain", "river")

MIN_SIZE = 16
MIN_HEIGHT = 32


# ----------------------------------------------------------------------------- noise


def periodic_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1] of shape (size, size) that tiles with period `size`.

    A random `cells x cells` lattice is interpolated with a smoothstep; lattice index
    `cells` wraps to 0, so the field is periodic whatever `size` is.
    """
    lattice = rng.random((cells, cells), dtype=np.float32)
    u = np.arange(size, dtype=np.float32) * (cells / size)
    i0 = np.floor(u).astype(np.int64)
    f = u - i0
    f = f * f * (3.0 - 2.0 * f)
    i0 %= cells
    i1 = (i0 + 1) % cells
    fx, fz = f[:, None], f[None, :]
    a = lattice[np.ix_(i0, i0)] * (1 - fz) + lattice[np.ix_(i0, i1)] * fz
    b = lattice[np.ix_(i1, i0)] * (1 - fz) + lattice[np.ix_(i1, i1)] * fz
    return a * (1 - fx) + b * fx


def fractal_noise(rng: np.random.Generator, size: int, cells: int, octaves: int = 4) -> np.ndarray:
    """Periodic fractal noise, standardised to mean 0 and std 1/3 (so nearly all of it lies in [-1, 1]).

    Octaves of value noise, each twice as fine and half as strong. Standardising makes
    a biome's amplitudes mean the same thing for every seed.
    """
    total = np.zeros((size, size), np.float32)
    for octave in range(octaves):
        total += 0.5**octave * periodic_noise(rng, size, min(cells * 2**octave, size))
    return (total - total.mean()) / (3.0 * float(total.std()) + 1e-6)


def _meander(rng: np.random.Generator, size: int, wiggle: float) -> np.ndarray:
    """sin(2 pi x / size + wiggle * noise): periodic, with zero lines that wind along z near x = 0 and size / 2."""
    x = np.arange(size, dtype=np.float32)[:, None]
    return np.sin(2 * np.pi * x / size + wiggle * fractal_noise(rng, size, 2, 3))


# ----------------------------------------------------------------------------- columns


def _fill_columns(
    surface: np.ndarray, top: np.ndarray, filler: np.ndarray, deep: np.ndarray, sea: int, height: int, filler_depth: int = 3
) -> np.ndarray:
    """Voxel array from per-column data: `surface` is the y of the top solid block (int, (S, S)).

    Below it `filler_depth` blocks of `filler`, then `deep` (stone) down to bedrock;
    above it water up to `sea`, then air.
    """
    y = np.arange(height, dtype=np.int16)[None, :, None]
    h = surface.astype(np.int16)[:, None, :]
    blocks = np.where(y <= sea, np.uint8(Block.WATER), np.uint8(Block.AIR))
    blocks = np.where(y <= h, top[:, None, :], blocks)
    blocks = np.where(y < h, filler[:, None, :], blocks)
    blocks = np.where(y < h - filler_depth, deep[:, None, :], blocks)
    blocks[:, 0, :] = Block.BEDROCK
    return np.ascontiguousarray(blocks.astype(np.uint8))


def _full(size: int, block: Block) -> np.ndarray:
    return np.full((size, size), block, np.uint8)


# ----------------------------------------------------------------------------- features


def _stamp(blocks: np.ndarray, x: int, y: int, z: int, shape: np.ndarray, block: Block, only_air: bool = True) -> None:
    """Write `block` where the boolean `shape` (dx, dy, dz), centred on x and z and starting at y, is set.

    x and z wrap around the world; cells above the world are cut off.
    """
    size, height = blocks.shape[0], blocks.shape[1]
    sx, sy, sz = shape.shape
    sy = min(sy, height - y)
    if sy <= 0:
        return
    xs = (np.arange(sx) + x - sx // 2) % size
    zs = (np.arange(sz) + z - sz // 2) % size
    index = np.ix_(xs, np.arange(y, y + sy), zs)
    region = blocks[index]
    mask = shape[:, :sy, :]
    if only_air:
        mask = mask & (region == Block.AIR)
    region[mask] = block
    blocks[index] = region


def _column(blocks: np.ndarray, x: int, z: int, y0: int, y1: int, block: Block) -> None:
    """Fill x, z from y0 up to (not including) y1 with `block` (a trunk or a stem)."""
    blocks[x % blocks.shape[0], y0 : min(y1, blocks.shape[1]), z % blocks.shape[2]] = block


def _ball(radius_xz: float, radius_y: float, span_y: int, below: int = 0) -> np.ndarray:
    """A boolean ellipsoid-ish blob of shape (2r+1, span_y, 2r+1), centre `below` cells above its bottom."""
    r = int(np.ceil(radius_xz))
    dx = np.arange(-r, r + 1)[:, None, None]
    dy = np.arange(span_y)[None, :, None] - below
    dz = np.arange(-r, r + 1)[None, None, :]
    return (dx**2 + dz**2) / radius_xz**2 + dy**2 / radius_y**2 <= 1.0


def _candidate_spots(rng: np.random.Generator, size: int, spacing: int, keep: float) -> list[tuple[int, int]]:
    """Jittered grid points: one candidate per `spacing` cell, kept with probability `keep`."""
    spots = []
    for gx in range(0, size, spacing):
        for gz in range(0, size, spacing):
            jx, jz = rng.integers(0, spacing, 2)
            if rng.random() < keep:
                spots.append(((gx + int(jx)) % size, (gz + int(jz)) % size))
    return spots


def _oak(blocks: np.ndarray, rng: np.random.Generator, x: int, y: int, z: int) -> None:
    trunk = int(rng.integers(4, 7))
    crown = _ball(2.6, 2.2, 5, below=2)
    _stamp(blocks, x, y + trunk - 2, z, crown, Block.LEAVES)
    _column(blocks, x, z, y, y + trunk, Block.LOG)


# Spruce crown rings from the tip down: radius of each (0 = just the centre), Minecraft-style
# alternating wide and narrow rings under a pointed top.
SPRUCE_RINGS = (0, 1, 1, 2, 1, 2, 1, 2, 2)


def _spruce(blocks: np.ndarray, rng: np.random.Generator, x: int, y: int, z: int) -> None:
    trunk = int(rng.integers(6, 9))
    rings = SPRUCE_RINGS[: trunk - 1][::-1]  # bottom up; the crown starts two blocks above the ground
    d = np.abs(np.arange(-2, 3))
    manhattan, chebyshev = d[:, None] + d[None, :], np.maximum(d[:, None], d[None, :])
    crown = np.stack([(chebyshev <= r) & (manhattan <= r + (r == 2)) for r in rings], axis=1)  # (5, rings, 5)
    _stamp(blocks, x, y + trunk + 1 - len(rings), z, crown, Block.SPRUCE_LEAVES)
    _column(blocks, x, z, y, y + trunk, Block.LOG)


def _palm(blocks: np.ndarray, rng: np.random.Generator, x: int, y: int, z: int) -> None:
    trunk = int(rng.integers(5, 8))
    fronds = np.zeros((5, 2, 5), bool)
    fronds[2, 1, :] = fronds[:, 1, 2] = True
    fronds[[0, 4], 0, 2] = fronds[2, 0, [0, 4]] = True
    fronds[1:4, 1, 1:4] = True
    _stamp(blocks, x, y + trunk - 1, z, fronds, Block.LEAVES)
    _column(blocks, x, z, y, y + trunk, Block.LOG)


def _cactus(blocks: np.ndarray, rng: np.random.Generator, x: int, y: int, z: int) -> None:
    _column(blocks, x, z, y, y + int(rng.integers(1, 4)), Block.CACTUS)


def _giant_mushroom(blocks: np.ndarray, rng: np.random.Generator, x: int, y: int, z: int) -> None:
    stem = int(rng.integers(4, 8))
    if rng.random() < 0.5:  # red: a dome with hanging sides
        cap = np.zeros((5, 3, 5), bool)
        cap[:, 2, :] = True
        cap[[0, 4], 2, :] = cap[:, 2, [0, 4]] = False
        cap[[0, 4], 2, 1:4] = cap[1:4, 2, [0, 4]] = True
        cap[[0, 4], :2, 1:4] = cap[1:4, :2, [0, 4]] = True
        cap[[0, 0, 4, 4], 2, [0, 4, 0, 4]] = False
        _stamp(blocks, x, y + stem - 2, z, cap, Block.RED_MUSHROOM)
    else:  # brown: a wide flat cap
        cap = np.ones((7, 1, 7), bool)
        cap[[0, 0, 6, 6], 0, [0, 6, 0, 6]] = False
        _stamp(blocks, x, y + stem, z, cap, Block.BROWN_MUSHROOM)
    _column(blocks, x, z, y, y + stem, Block.MUSHROOM_STEM)


def _plant(blocks: np.ndarray, rng: np.random.Generator, surface: np.ndarray, spots, on: set[Block], grow) -> int:
    """Grow a feature on each spot whose top block is in `on` and open to the air (not under water); returns how many grew."""
    grown = 0
    for x, z in spots:
        y = int(surface[x, z])
        if y + 1 < blocks.shape[1] and blocks[x, y, z] in on and blocks[x, y + 1, z] == Block.AIR:
            grow(blocks, rng, x, y + 1, z)
            grown += 1
    return grown


# ----------------------------------------------------------------------------- biomes


def generate_terrain(seed: int, biome: str, size: int = 256, height: int = 64) -> np.ndarray:
    """A voxel world uint8 `(size, height, size)` indexed [x, y, z] of the given biome; same seed, same world."""
    if biome not in BIOMES:
        raise ValueError(f"unknown biome {biome!r}; choose one of {', '.join(BIOMES)}")
    if size < MIN_SIZE or height < MIN_HEIGHT:
        raise ValueError(f"world size {size} x height {height} is too small (need size >= {MIN_SIZE}, height >= {MIN_HEIGHT})")
    # One stream per (seed, biome), so the biomes of one seed differ from each other.
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(biome.encode())])
    sea = height * 3 // 8  # 24 for a 64-high world
    land = sea + 6
    n = lambda cells, octaves=4: fractal_noise(rng, size, max(1, round(cells * size / 256)), octaves)

    grass, dirt, stone = _full(size, Block.GRASS), _full(size, Block.DIRT), _full(size, Block.STONE)

    if biome == "plain":
        surface = land + 1.5 * n(4)
        top, filler = grass, dirt
        trees = dict(spacing=16, keep=0.35, on={Block.GRASS}, grow=_oak)
    elif biome == "forest":
        surface = land + 4 * n(6)
        top, filler = grass, dirt
        trees = dict(spacing=5, keep=0.8, on={Block.GRASS}, grow=_oak)
    elif biome == "desert":
        surface = land + 3 * n(5) + 2 * np.abs(n(10, 2))  # dunes
        top, filler = _full(size, Block.SAND), _full(size, Block.SAND)
        stone = _full(size, Block.SANDSTONE)
        trees = dict(spacing=7, keep=0.4, on={Block.SAND}, grow=_cactus)
    elif biome == "hills":
        relief = n(4, 5)
        surface = land + 2 + 14 * relief + 9 * np.maximum(relief, 0) ** 2
        steep = np.hypot(np.gradient(surface, axis=0), np.gradient(surface, axis=1)) > 1.2
        top = np.where(steep | (surface > height - 21), Block.STONE, Block.GRASS).astype(np.uint8)
        top = np.where(surface > height - 13, Block.SNOW, top).astype(np.uint8)
        filler = np.where(steep, Block.STONE, Block.DIRT).astype(np.uint8)
        trees = dict(spacing=13, keep=0.35, on={Block.GRASS}, grow=_oak)
    elif biome == "icy":
        surface = land - 2 + 7 * n(4)
        top, filler = _full(size, Block.SNOW), dirt
        trees = dict(spacing=10, keep=0.3, on={Block.SNOW}, grow=_spruce)
    elif biome == "mushroom":
        surface = land + 3 * n(4)
        top, filler = _full(size, Block.MYCELIUM), dirt
        trees = dict(spacing=11, keep=0.6, on={Block.MYCELIUM}, grow=_giant_mushroom)
    elif biome == "beach":
        # Sea on one side of a winding coast that runs near the middle of the world (and wraps).
        coast = _meander(rng, size, 2.0)
        surface = sea + 0.5 - 14 * coast + 2 * n(8, 3)
        sandy = surface < sea + 3.5
        top = np.where(sandy, Block.SAND, Block.GRASS).astype(np.uint8)
        filler = np.where(sandy, Block.SAND, Block.DIRT).astype(np.uint8)
        trees = dict(spacing=10, keep=0.45, on={Block.SAND, Block.GRASS}, grow=_palm)
    else:  # river
        base = sea + 2.5 + 2.5 * n(4)  # low land, so the river shows from afar
        # Two winding rivers along z, one near the middle: where the meander field crosses zero.
        course = np.abs(_meander(rng, size, 1.5))
        bank = np.clip((course - 0.1) / 0.2, 0.0, 1.0)
        bank = bank * bank * (3 - 2 * bank)
        surface = (sea - 4) * (1 - bank) + base * bank
        sandy = surface < sea + 2
        top = np.where(sandy, Block.SAND, Block.GRASS).astype(np.uint8)
        filler = np.where(sandy, Block.SAND, Block.DIRT).astype(np.uint8)
        trees = dict(spacing=12, keep=0.4, on={Block.GRASS}, grow=_oak)

    surface = np.clip(np.rint(surface), 2, height - 5).astype(np.int64)
    # Under water the floor is sand (or gravel in the deep), whatever the biome's top block.
    underwater = surface < sea
    if biome != "icy":
        top = np.where(underwater, np.where(surface < sea - 4, Block.GRAVEL, Block.SAND), top).astype(np.uint8)
    else:
        top = np.where(underwater, Block.DIRT, top).astype(np.uint8)
    blocks = _fill_columns(surface, top, filler, stone, sea, height)

    if biome == "icy":
        # Frozen lakes: the top water layer turns to ice.
        frozen = blocks[:, sea, :] == Block.WATER
        blocks[:, sea, :][frozen] = Block.ICE
    spots = _candidate_spots(rng, size, trees["spacing"], trees["keep"])
    _plant(blocks, rng, surface, spots, trees["on"], trees["grow"])
    return blocks
