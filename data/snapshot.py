"""Render still pictures of the voxel world to PNG.

    worldmodel snapshot --biome forest --seed 0 --size 256 --out forest.png
    worldmodel snapshot --all-biomes --seed 0 --out docs/images      # one PNG per biome + biomes.png

The camera stands at the world's spawn point and looks out slightly downwards, along
the most open of a few directions, so the picture shows the biome rather than a wall.
An existing file is never overwritten unless --force is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from data.blocks import Block
from data.files import atomic_path
from data.render import View, look_direction, render
from data.terrain import BIOMES
from data.world import World

EYE_HEIGHT = 1.62
PITCH = -12.0
PITCH_BY_BIOME = {"hills": 2.0}  # look at the skyline, not the valley floor


def _first_block(world: World, eye: tuple[float, float, float], yaw: float, pitch: float, reach: float = 40.0) -> int:
    """The first non-air block (water included) a ray meets, marching in quarter-block steps; AIR if none."""
    dx, dy, dz = look_direction(yaw, pitch)
    for i in range(1, int(reach * 4)):
        t = i * 0.25
        block = world.get(int(np.floor(eye[0] + dx * t)), int(np.floor(eye[1] + dy * t)), int(np.floor(eye[2] + dz * t)))
        if block != Block.AIR:
            return block
    return Block.AIR


def _free_distance(world: World, eye: tuple[float, float, float], yaw: float, reach: int = 32) -> int:
    """Blocks a level probe walks from the eye before anything (at eye height or up to 3 above) is in the way."""
    dx, _, dz = look_direction(yaw, 0.0)
    free = 0
    for step in range(1, reach + 1):
        px, pz = int(np.floor(eye[0] + dx * step)), int(np.floor(eye[2] + dz * step))
        if any(world.get(px, int(np.floor(eye[1])) + up, pz) != Block.AIR for up in (0, 1, 3)):
            break
        free = step
    return free


def _rise(world: World, eye: tuple[float, float, float], yaw: float, reach: int = 40) -> int:
    """How far the ground rises above the eye somewhere along a heading (hills worth looking at)."""
    dx, _, dz = look_direction(yaw, 0.0)
    heights = [world.surface_y(int(np.floor(eye[0] + dx * s)), int(np.floor(eye[2] + dz * s))) for s in range(8, reach, 4)]
    return max(0, max(heights) - int(eye[1]))


def snapshot_view(world: World, seed: int) -> View:
    """A pleasant pose: near the middle of the world, looking slightly down along an open direction.

    Candidate poses (12 places near spawn points x 12 yaws) are scored by how far a probe
    walks before anything is in the way, plus a bonus for each of a few probe rays that
    sees water (so beaches and rivers show their water) and, for hills, for how high the
    ground rises ahead; the best one wins.
    """
    rng = np.random.default_rng(seed)
    pitch = PITCH_BY_BIOME.get(world.biome, PITCH)
    rise_weight = 2.0 if world.biome == "hills" else 0.0
    best, best_score = None, -1.0
    for _ in range(12):
        x, y, z = world.spawn_point(rng)
        # Wander from the spawn point: a wider choice of places (a river may be 20 blocks off).
        for _ in range(8):
            cx, cz = int(x + rng.integers(-24, 25)), int(z + rng.integers(-24, 25))
            cy = world.surface_y(cx, cz)
            if world.get(cx, cy - 1, cz) in (Block.GRASS, Block.SAND, Block.SNOW, Block.MYCELIUM):
                x, y, z = cx % world.size + 0.5, float(cy), cz % world.size + 0.5
                break
        eye = (x, y + EYE_HEIGHT, z)
        for yaw in range(0, 360, 30):
            sees_water = sum(
                _first_block(world, eye, yaw + dyaw, pitch + dpitch) == Block.WATER
                for dyaw in (-20, 0, 20)
                for dpitch in (-2, -6, -12)
            )
            score = _free_distance(world, eye, yaw) + 4 * sees_water
            if rise_weight:
                score += rise_weight * _rise(world, eye, yaw)
            if score > best_score:
                best, best_score = View(eye=eye, yaw=float(yaw), pitch=pitch), score
    return best


def biome_picture(biome: str, seed: int, resolution: int, world_size: int = 256) -> np.ndarray:
    world = World.generate(seed, biome, size=world_size)
    return render(world, snapshot_view(world, seed), resolution)


def contact_sheet(pictures: dict[str, np.ndarray], columns: int = 4) -> np.ndarray:
    """Pictures in a grid, each with its name written underneath."""
    names = list(pictures)
    h, w, _ = pictures[names[0]].shape
    label, pad = 18, 4
    rows = -(-len(names) // columns)
    sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + label + pad) + pad), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(names):
        col, row = i % columns, i // columns
        x0, y0 = pad + col * (w + pad), pad + row * (h + label + pad)
        sheet.paste(Image.fromarray(pictures[name]), (x0, y0))
        draw.text((x0 + 4, y0 + h + 3), name, fill=(235, 235, 235))
    return np.asarray(sheet)


def save_png(image: np.ndarray, path: Path, force: bool) -> None:
    """Write a PNG atomically; refuse to replace an existing file unless `force`."""
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--biome", choices=BIOMES, default="forest", help="biome to picture")
    parser.add_argument("--all-biomes", action="store_true",
                        help="one picture per biome plus a contact sheet biomes.png; --out is a folder")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="world seed")
    parser.add_argument("--size", type=int, default=256, help="picture side in pixels")
    parser.add_argument("--world-size", type=int, default=256, help="world side in blocks")
    parser.add_argument("--out", type=Path, required=True, help="PNG file (or folder with --all-biomes)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")


def main(args: argparse.Namespace) -> int:
    if args.size < 8:
        raise SystemExit(f"--size must be at least 8 pixels, got {args.size}")
    if not args.all_biomes:
        if args.out.exists() and not args.force:
            raise SystemExit(f"{args.out} already exists; pass --force to overwrite it")
        save_png(biome_picture(args.biome, args.seed, args.size, args.world_size), args.out, args.force)
        print(f"wrote {args.out}")
        return 0
    targets = [args.out / f"{biome}.png" for biome in BIOMES] + [args.out / "biomes.png"]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not args.force:
        raise SystemExit(f"{', '.join(existing)} already exist; pass --force to overwrite")
    pictures = {biome: biome_picture(biome, args.seed, args.size, args.world_size) for biome in BIOMES}
    for biome, picture in pictures.items():
        save_png(picture, args.out / f"{biome}.png", args.force)
    save_png(contact_sheet(pictures), args.out / "biomes.png", args.force)
    print(f"wrote {len(pictures)} biome pictures and biomes.png to {args.out}")
    return 0
