"""The voxel world: a block array with wrap-around lookups, edits that persist, spawn points.

`World.blocks` is a uint8 array indexed [x, y, z] (y up). The world is a torus in x
and z: `get(size, y, 0)` is `get(0, y, 0)`. Below the world is bedrock, above it air.
Edits through `set()` write into `blocks`, so a broken block stays broken.

The renderer also keeps, per 8x8 tile of columns, an upper bound of the height of
anything drawn in it (`tile_top`), so rays above the terrain skip whole tiles. `set()`
keeps that bound true; breaking a block leaves it (an upper bound stays an upper bound).
Code that writes `blocks` directly must call `refresh_render_bounds()` afterwards.
"""

from __future__ import annotations

import numpy as np

from data.blocks import SOLID, Block
from data.terrain import BIOMES, generate_terrain

TILE = 8  # columns per side of a render skip tile (the world size must be a multiple, else 1)


def _tile_side(size: int) -> int:
    return TILE if size % TILE == 0 else 1


def compute_tile_top(blocks: np.ndarray) -> np.ndarray:
    """int32 (size/T, size/T): for each T x T tile of columns, 1 + the highest non-air y (0 if empty)."""
    size, height = blocks.shape[0], blocks.shape[1]
    t = _tile_side(size)
    filled = blocks != Block.AIR  # (S, H, S)
    ys = np.arange(1, height + 1, dtype=np.int32)[None, :, None]
    column_top = np.max(np.where(filled, ys, 0), axis=1)  # (S, S)
    tiles = column_top.reshape(size // t, t, size // t, t).max(axis=(1, 3))
    return np.ascontiguousarray(tiles.astype(np.int32))


class World:
    """A generated voxel world; see the module docstring for its conventions."""

    def __init__(self, blocks: np.ndarray, seed: int = 0, biome: str = "plain") -> None:
        if blocks.ndim != 3 or blocks.shape[0] != blocks.shape[2]:
            raise ValueError(f"blocks must be (size, height, size), got shape {blocks.shape}")
        self.blocks = np.ascontiguousarray(blocks, dtype=np.uint8)
        self.seed = int(seed)
        self.biome = biome
        self.size = int(blocks.shape[0])
        self.height = int(blocks.shape[1])
        self.tile = _tile_side(self.size)
        self.tile_top = compute_tile_top(self.blocks)

    @classmethod
    def generate(cls, seed: int, biome: str | None = None, size: int = 256, height: int = 64) -> World:
        """Generate a world; with `biome=None` the biome is picked from the seed."""
        if biome is None:
            biome = BIOMES[int(np.random.default_rng(int(seed) & 0xFFFFFFFF).integers(len(BIOMES)))]
        return cls(generate_terrain(seed, biome, size, height), seed=seed, biome=biome)

    # -- lookups and edits ---------------------------------------------------

    def get(self, x: int, y: int, z: int) -> int:
        """Block id at integer cell (x, y, z); x and z wrap, below the world is bedrock, above it air."""
        if y < 0:
            return int(Block.BEDROCK)
        if y >= self.height:
            return int(Block.AIR)
        return int(self.blocks[x % self.size, y, z % self.size])

    def set(self, x: int, y: int, z: int, block: int) -> None:
        """Write `block` at (x, y, z) (x, z wrap). Cells outside 0 <= y < height cannot be edited."""
        if not 0 <= y < self.height:
            raise ValueError(f"cannot set a block at y={y}: the world spans 0 <= y < {self.height}")
        x, z = x % self.size, z % self.size
        self.blocks[x, y, z] = block
        if block != Block.AIR:
            tile = self.tile_top[x // self.tile, z // self.tile]
            self.tile_top[x // self.tile, z // self.tile] = max(int(tile), y + 1)

    def refresh_render_bounds(self) -> None:
        """Recompute `tile_top`; needed only after writing `blocks` directly instead of through `set()`."""
        self.tile_top = compute_tile_top(self.blocks)

    def is_solid(self, x: int, y: int, z: int) -> bool:
        """Whether the player collides with the block at (x, y, z)."""
        return bool(SOLID[self.get(x, y, z)])

    def surface_y(self, x: int, z: int) -> int:
        """y of the first free cell above the highest solid-or-water block of column (x, z)."""
        column = self.blocks[x % self.size, :, z % self.size]
        filled = np.flatnonzero(column != Block.AIR)
        return int(filled[-1]) + 1 if filled.size else 0

    def spawn_point(self, rng_or_seed: np.random.Generator | int) -> tuple[float, float, float]:
        """Feet position (x, y, z) on dry, open ground near the middle of the world.

        Looks at random columns within a widening radius of the centre for one whose top
        is solid ground (not water, leaves or a tree) with two free cells above it.
        """
        rng = rng_or_seed if isinstance(rng_or_seed, np.random.Generator) else np.random.default_rng(rng_or_seed)
        centre = self.size // 2
        ground = {Block.GRASS, Block.DIRT, Block.SAND, Block.SNOW, Block.MYCELIUM, Block.STONE, Block.GRAVEL, Block.SANDSTONE}
        for radius in (8, 16, 32, 64, self.size // 2):
            for _ in range(64):
                x = centre + int(rng.integers(-radius, radius + 1))
                z = centre + int(rng.integers(-radius, radius + 1))
                y = self.surface_y(x, z)
                if 0 < y < self.height - 2 and self.get(x, y - 1, z) in ground:
                    return (x % self.size + 0.5, float(y), z % self.size + 0.5)
        raise ValueError(f"no dry land to spawn on in this {self.biome} world (seed {self.seed})")
