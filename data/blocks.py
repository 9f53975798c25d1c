"""Block types of the voxel world.

A block id is a uint8 stored in the world's voxel array. Which blocks stop the
player (SOLID), which ones rays can see through (TRANSPARENT), and which can be
broken are tables indexed by id, so the physics and the C renderer share them.
Textures (16x16, made by code) are built in `data/textures.py`.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Block(IntEnum):
    AIR = 0
    GRASS = 1
    DIRT = 2
    STONE = 3
    SAND = 4
    WATER = 5
    SNOW = 6
    ICE = 7
    LOG = 8
    LEAVES = 9
    CACTUS = 10
    MYCELIUM = 11
    MUSHROOM_STEM = 12
    RED_MUSHROOM = 13
    BROWN_MUSHROOM = 14
    PLANKS = 15
    BEDROCK = 16
    GRAVEL = 17
    SANDSTONE = 18
    COBBLESTONE = 19
    SPRUCE_LEAVES = 20  # snow-dusted needles of the icy biome's spruces


NUM_BLOCKS = len(Block)

SOLID = np.ones(NUM_BLOCKS, bool)
SOLID[[Block.AIR, Block.WATER]] = False

# Rays pass through these (water is drawn as a tinted, see-through surface).
TRANSPARENT = np.zeros(NUM_BLOCKS, bool)
TRANSPARENT[[Block.AIR, Block.WATER]] = True

BREAKABLE = SOLID.copy()
BREAKABLE[Block.BEDROCK] = False

# The block the player places with `use`.
PLACED_BLOCK = Block.PLANKS
