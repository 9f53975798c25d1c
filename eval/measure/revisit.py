"""Does the world persist? Paths that come back to where they started, generated and simulated.

A world model that forgets shows a new place when the player turns back; one that persists shows the start
again. Each path below ends where it began, looking the same way, so its last frame should match its first:

  full_circle   36 frames of yaw +10 deg: a turn on the spot (the simulator's last frame IS its first); the
                frame facing the opposite way (frame 18) says how alike two unrelated views of the scene are
  out_and_back  walk 16 frames, turn round (18 x 10 deg), walk back 16, turn round again
  loop          A -> B -> C -> A (as LoopNav's loops): three legs of 12 frames walking, each followed by a
                120 deg turn (12 x 10 deg), closing a triangle

Walking paths come back to the start only as far as the game's physics let them (a slope or a wall changes a
step), which is why the simulator's own return is not perfect: its score is the bar. Scenes: the first of each
biome (data.scenes), worlds the model never trained on. PSNR of the last frame against the first (the real
start picture), per scene and on average.

    python -m eval.measure.revisit --pipeline assets/wm-default --strip docs/images/revisit_strip.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from data.actions import Action
from data.files import write_text_atomic
from eval.fidelity import PSNR_CAP_DB, psnr
from worldmodel.strips import save_row

TURN = Action(camera=(0.0, 10.0))
WALK = Action(frozenset({"forward"}))

PATHS: dict[str, list[Action]] = {
    "full_circle": [TURN] * 36,
    "out_and_back": ([WALK] * 16 + [TURN] * 18) * 2,
    "loop": ([WALK] * 12 + [TURN] * 12) * 3,
}
FACING_AWAY = 18  # the full circle's frame that looks the opposite way


def revisit_scenes() -> list:  # list[data.scenes.Scene]
    """The first scene of each biome."""
    from data.scenes import SCENES, SCENES_PER_BIOME

    return list(SCENES)[::SCENES_PER_BIOME]


@torch.no_grad()
def generate(pipe, starts: np.ndarray, acts: list[Action], seed: int = 0) -> np.ndarray:  # a WorldPipeline
    """The model's frames (B, T + 1, H, W, 3) for the same actions from each start (B, H, W, 3), one batch."""
    session = pipe.new_session(seed=seed)
    frames = [session.start(starts)]
    frames += [session.step(act) for act in acts]
    return np.stack(frames, axis=1)


def measure_revisits(pipe, scenes: list | None = None) -> dict:  # a WorldPipeline
    """Every path from every scene, model and simulator. Returns per-path means and per-scene values, and the
    full circle's frames of the first scene (model and simulator) for a strip."""
    scenes = revisit_scenes() if scenes is None else scenes
    size = pipe.image_size
    result: dict = {"scenes": [s.name for s in scenes], "paths": {}}
    for name, acts in PATHS.items():
        truth = np.stack([s.game(size).rollout(acts).frames for s in scenes])
        t0 = time.time()
        model = generate(pipe, truth[:, 0], acts)
        seconds = time.time() - t0
        row = {
            "frames": len(acts),
            "model_psnr": [psnr(v[-1], v[0]) for v in model],
            "true_psnr": [psnr(v[-1], v[0]) for v in truth],
            "seconds": seconds,
        }
        if name == "full_circle":
            row["model_away_psnr"] = [psnr(v[FACING_AWAY], v[0]) for v in model]
            row["true_away_psnr"] = [psnr(v[FACING_AWAY], v[0]) for v in truth]
            result["strip"] = {"model": model[0], "truth": truth[0]}
        for key in [k for k in row if k.endswith("_psnr")]:
            row[key.replace("_psnr", "_mean")] = float(np.mean(row[key]))
        result["paths"][name] = row
    return result


def markdown(r: dict) -> str:
    lines = [
        f"Scenes: {', '.join(r['scenes'])} (the first of each biome). PSNR dB of the last frame against the first "
        f"({PSNR_CAP_DB:.0f} = identical).",
        "",
        "| path | frames | model | simulator |",
        "|---|---|---|---|",
    ]
    for name, row in r["paths"].items():
        lines.append(f"| {name} | {row['frames']} | {row['model_mean']:.1f} | {row['true_mean']:.1f} |")
    circle = r["paths"]["full_circle"]
    lines += [
        f"| full_circle, the frame facing away (frame {FACING_AWAY}) | | {circle['model_away_mean']:.1f} "
        f"| {circle['true_away_mean']:.1f} |",
        "",
    ]
    return "\n".join(lines)


def strip_rows(r: dict, every: int = 3) -> list[list[np.ndarray]]:
    """The full circle of the first scene, every `every`-th frame: model row, simulator row."""
    return [list(r["strip"]["model"][::every]), list(r["strip"]["truth"][::every])]


def revisits(pipe, strip_path: Path) -> dict:  # a WorldPipeline
    """The paths of measure_revisits, and the strip of the first scene's full circle saved to strip_path."""
    r = measure_revisits(pipe)
    save_row(strip_path, strip_rows(r), scale=2, labels=["model", "truth"])
    r.pop("strip")
    r["strip_path"] = str(strip_path)
    return r


def main() -> int:
    from worldmodel.pipeline import WorldPipeline

    parser = argparse.ArgumentParser(description="Revisit measures: paths that come back to their start.")
    parser.add_argument("--pipeline", default=None, help="a pipeline folder (default: the shipped model)")
    parser.add_argument("--quant", choices=("int8", "lut4", "lut3"), default=None)
    parser.add_argument("--out", default=None, help="write revisit.json here")
    parser.add_argument("--strip", default=None, help="PNG of the full circle, model above the simulator")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = WorldPipeline.from_pretrained(args.pipeline, quant=args.quant)
    r = measure_revisits(pipe)
    print(markdown(r))
    if args.strip:
        save_row(Path(args.strip), strip_rows(r), scale=2, labels=["model", "truth"])
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        r.pop("strip")
        write_text_atomic(out, json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
