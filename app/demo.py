"""Run the main job on the shipped default and show the result: `worldmodel demo`.

Loads the shipped world model (assets/wm-default), starts it from a scene and plays a short
scripted sequence (walk forward, turn right, jump forward, look round, strafe), then writes
into the output folder:

    demo.mp4 + demo.jsonl + demo.meta.json   the generated clip (the project's clip format)
    demo-side-by-side.mp4                    the model beside the real simulator on the same actions, 4x
    demo-strip.png                           every few frames in a row: the model above the simulator

and prints where they are. Without a shipped checkpoint it says so and records the same
sequence with the real simulator instead, so the command always shows something.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from app.worlds import (
    DEFAULT_MODEL,
    DEFAULT_SCENE,
    QUANTS,
    SIMULATOR,
    SimulatorSession,
    WorldFactory,
    default_model_available,
    model_label,
    roll_out,
    scene_start,
    thread_count,
)
from data.actions import Action

# (frames, action): about four seconds at 20 frames a second.
SCRIPT: tuple[tuple[int, Action], ...] = (
    (16, Action({"forward"})),
    (9, Action({"forward"}, (0.0, 5.0))),  # turn right 45 degrees while walking
    (12, Action({"forward", "jump"})),
    (9, Action(camera=(0.0, -10.0))),  # look left 90 degrees
    (6, Action(camera=(4.0, 0.0))),  # look up
    (6, Action(camera=(-4.0, 0.0))),
    (12, Action({"left"})),
    (10, Action({"forward", "sprint"})),
)
STRIP_FRAMES = 10
SCALE = 4


def demo_actions() -> list[Action]:
    return [act for count, act in SCRIPT for _ in range(count)]


def upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(frames, scale, axis=-3), scale, axis=-2)


def image_strip(rows: list[tuple[str, np.ndarray]], count: int = STRIP_FRAMES, scale: int = 2) -> np.ndarray:
    """Every few frames side by side, one labelled row per source; uint8 (H, W, 3)."""
    from PIL import Image, ImageDraw

    total = len(rows[0][1])
    picks = np.linspace(0, total - 1, min(count, total)).round().astype(int)
    label_w, gap = 96, 2
    side = rows[0][1].shape[1] * scale
    canvas = Image.new("RGB", (label_w + len(picks) * (side + gap), len(rows) * (side + gap) + 14), (20, 20, 24))
    draw = ImageDraw.Draw(canvas)
    for r, (label, frames) in enumerate(rows):
        y = r * (side + gap)
        draw.text((6, y + side // 2 - 6), label, fill=(235, 235, 235))
        for c, t in enumerate(picks):
            canvas.paste(Image.fromarray(upscale(frames[t], scale)), (label_w + c * (side + gap), y))
    for c, t in enumerate(picks):
        draw.text((label_w + c * (side + gap) + 2, len(rows) * (side + gap)), f"t={t}", fill=(160, 160, 160))
    return np.asarray(canvas)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    parser.add_argument("--scene", default=DEFAULT_SCENE, help="start scene (a name or an index)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"'{DEFAULT_MODEL}' (assets/wm-default), a checkpoint folder, or '{SIMULATOR}'")
    parser.add_argument("--quant", choices=QUANTS, default="fp32", help="how the transformer blocks run")
    parser.add_argument("--seed", type=int, default=0, help="sampling noise seed")
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto")
    parser.add_argument("--threads", type=thread_count, default=1,
                        help="CPU threads for the model; 0: torch's default (on a busy CPU one thread was 10x faster)")


def main(args: argparse.Namespace) -> int:
    from PIL import Image

    from app.generate import write_clip
    from data.video import write_mp4

    model = args.model
    if model == DEFAULT_MODEL:
        available, why = default_model_available()
        if not available:
            print(f"note: {why}; showing the real simulator on the demo's actions instead of the world model "
                  f"(train one with `worldmodel train`)", flush=True)
            model = SIMULATOR
    try:
        start = scene_start(args.scene)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    actions = demo_actions()
    factory = WorldFactory(args.device, args.threads or None)
    print(f"{model_label(model)} ({args.quant}) from {start.name}: {len(actions)} frames ...", flush=True)
    t0 = time.perf_counter()
    try:
        session = factory(model, args.quant, start, args.seed)
    except (FileNotFoundError, ValueError, RuntimeError, ImportError) as err:
        print(f"error: cannot load {model!r}: {err}", file=sys.stderr)
        return 1
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    frames = roll_out(session, start.image, actions)
    gen_s = time.perf_counter() - t0
    fps = len(actions) / max(gen_s, 1e-9)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    meta = {"source": "worldmodel demo", "model": model_label(model), "quant": args.quant, "seed": args.seed,
            "start": start.name, "actions": len(actions), "seconds": round(gen_s, 3),
            "frames_per_second": round(fps, 2)}
    paths = write_clip(out, "demo", frames, actions, meta)
    print(f"  {paths['.mp4']}  ({len(frames)} frames, {len(frames) / 20:.1f} s at 20 fps)")
    print(f"  {paths['.jsonl']}  (the actions, one line per frame)")
    rows = [(model_label(model), frames)]
    if model != SIMULATOR:
        truth = roll_out(SimulatorSession(start.scene), start.image, actions)
        rows.append(("simulator", truth))
        side_by_side = out / "demo-side-by-side.mp4"
        write_mp4(side_by_side, upscale(np.concatenate([frames, truth], axis=2), SCALE))
        print(f"  {side_by_side}  (the model, left, beside the real simulator, right)")
    strip = out / "demo-strip.png"
    tmp = strip.with_name(f".{strip.name}.tmp")
    Image.fromarray(image_strip(rows)).save(tmp, format="PNG")
    tmp.replace(strip)
    print(f"  {strip}  ({min(STRIP_FRAMES, len(frames))} frames spread over the clip)")
    print(f"generated {len(actions)} frames in {gen_s:.1f} s ({fps:.1f} frames/s; loading took {load_s:.1f} s)")
    return 0
