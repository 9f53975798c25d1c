"""`worldmodel bench world`: how fast the world is made and drawn, on one core.

Rows:
- generate: CPU seconds to generate one 256 x 64 x 256 world, per biome measured.
- render: frames/s of `render()` at 64, 128 and 256 pixels over a fixed set of poses
  (horizontal and slightly-down views at the spawn point) in a forest, a plain and a
  beach world, single-threaded (the C ray caster never uses more than one thread);
  frames per CPU-second of the rendering thread (best of several rounds), since other
  processes share the machine.
- game_step: frames/s of `Game.step` (physics + render) at 64x64, when data/game.py is
  there; the physics owner may refine this row.

The targets are 1,000 frames/s at 64x64 and 300 at 128x128.
"""

from __future__ import annotations

import time

from data.render import View, render
from data.world import World

BIOMES = ("forest", "plain", "beach")
RESOLUTIONS = (64, 128, 256)
TARGET_FPS = {64: 1000.0, 128: 300.0}


def bench_poses(world: World, seed: int = 0) -> list[View]:
    """Eight fixed poses at the spawn point: four headings, each level and 15 degrees down."""
    x, y, z = world.spawn_point(seed)
    eye = (x, y + 1.62, z)
    return [View(eye=eye, yaw=yaw, pitch=pitch) for yaw in (0.0, 90.0, 180.0, 270.0) for pitch in (0.0, -15.0)]


def _time_frames(world: World, views: list[View], side: int, rounds: int) -> float:
    """Frames per CPU-second rendering `views` round-robin: the fastest of `rounds` rounds.

    Timed with this thread's CPU clock, not the wall clock: the machine is shared, and
    the question is what one core can do, not how much of it we were given.
    """
    render(world, views[0], side)  # compile / warm up
    repeats = max(1, int(4096 * 64 / (side * side)))  # about 0.05 s of frames per round at target speed
    best = float("inf")
    for _ in range(rounds):
        start = time.thread_time()
        for _ in range(repeats):
            for view in views:
                render(world, view, side)
        best = min(best, time.thread_time() - start)
    return repeats * len(views) / best


def _game_step_fps(quick: bool) -> dict | None:
    """Frames/s of the full game step (physics + render) at 64x64, if data/game.py provides Game."""
    try:
        from data.actions import Action
        from data.game import Game
    except ImportError:
        return None
    game = Game(seed=0, biome="forest")
    game.reset()
    act = Action(keys=frozenset({"forward"}), camera=(0.0, 2.0))
    steps = 200 if quick else 2000
    start = time.thread_time()  # CPU time, as for the render rows
    for _ in range(steps):
        game.step(act)
    fps = steps / (time.thread_time() - start)
    return {"what": "game_step", "biome": "forest", "size": 64, "frames_per_s": fps, "seconds": None, "target": None}


def run(quick: bool) -> list[dict]:
    rows: list[dict] = []
    rounds = 3 if quick else 8
    for biome in BIOMES:
        start = time.thread_time()
        world = World.generate(0, biome)
        rows.append({"what": "generate", "biome": biome, "size": world.size, "frames_per_s": None,
                     "seconds": time.thread_time() - start, "target": None})  # fmt: skip
        views = bench_poses(world)
        for side in RESOLUTIONS[:2] if quick else RESOLUTIONS:
            fps = _time_frames(world, views, side, rounds)
            rows.append({"what": "render", "biome": biome, "size": side, "frames_per_s": fps, "seconds": None,
                         "target": TARGET_FPS.get(side)})  # fmt: skip
    try:
        row = _game_step_fps(quick)
    except Exception as err:  # the game facade is another room's; report, do not crash the bench
        row = {"what": "game_step", "biome": "forest", "size": 64, "frames_per_s": None, "seconds": None,
               "target": None, "error": f"{type(err).__name__}: {err}"}  # fmt: skip
    if row is not None:
        rows.append(row)
    return rows
