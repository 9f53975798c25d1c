"""`python -m eval.measure`: every measurement of eval/measure/ on one pipeline, to OUT/measure.json and
OUT/measure.md (see eval/measure/__init__.py)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from data.files import write_text_atomic
from eval.measure.long_play import long_play
from eval.measure.report import markdown
from eval.measure.responsiveness import responsiveness, walking_in_play
from eval.measure.revisit import revisits
from eval.measure.rollout_fidelity import rollout_fidelity
from eval.measure.strip import model_strip
from worldmodel.pipeline import WorldPipeline

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eval.measure",
        description="Measure a world-model pipeline against the simulator, on worlds it never trained on.",
    )
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--strip", required=True, help="PNG for the model strip (docs/images/model_strip.png)")
    parser.add_argument("--val", default=str(REPO / "runs" / "val64"))
    parser.add_argument("--per-clip", type=int, default=2, help="rollouts per val clip (20 clips)")
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--long-frames", type=int, default=1000)
    parser.add_argument("--long-play-scenes", default="",
                        help="more start scenes for the long play, comma-separated (e.g. forest_0,icy_0): a summary "
                             "row each (about 100 s a scene); the main long play starts from plain_1")
    parser.add_argument("--long-play-true-geometry", action="store_true",
                        help="play plain_1 and the --long-play-scenes again with the simulator's camera and depth in the world "
                             "memory and the network's base (eval.measure.true_geometry): what is left short is the painter's")
    parser.add_argument("--revisit-strip", default=str(REPO / "docs" / "images" / "revisit_strip.png"),
                        help="PNG of a full circle, model above the simulator")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from data.clips import find_clips

    if not Path(args.val).is_dir() or not find_clips(args.val):
        raise SystemExit(f"{args.val}: no recorded clips; record the unseen worlds first: "
                         f"worldmodel record --out {args.val} --frames 10000 --seed 100000")
    from data.scenes import get_scene

    long_scenes = [name for name in args.long_play_scenes.split(",") if name]
    for name in long_scenes:  # checked before minutes of measuring, not after them
        try:
            get_scene(name)
        except ValueError as err:
            raise SystemExit(f"--long-play-scenes: {err}") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = WorldPipeline.from_pretrained(args.pipeline)
    result: dict = {
        "pipeline": args.pipeline,
        "sampling": {k: getattr(pipe.sampling, k) for k in ("steps", "context_sigma", "shift", "guidance", "guidance_steps")},
        "dit_parameters": sum(p.numel() for p in pipe.dit.parameters()),
        "autoencoder_parameters": sum(p.numel() for p in pipe.autoencoder.parameters()),
    }
    t0 = time.time()
    for name, fn in (
        ("fidelity", lambda: rollout_fidelity(pipe, Path(args.val), args.per_clip)),
        ("responsiveness", lambda: responsiveness(pipe, args.scenes)),
        ("walking", lambda: walking_in_play(pipe, Path(args.val))),
        ("long_play", lambda: long_play(pipe, args.long_frames, out / "rollout_1000.png")),
        ("strip", lambda: model_strip(pipe, Path(args.strip))),
        ("revisit", lambda: revisits(pipe, Path(args.revisit_strip))),
        ("long_play_scenes", lambda: {
            scene: long_play(pipe, args.long_frames, out / f"rollout_1000_{scene}.png", scene_name=scene)
            for scene in long_scenes
        }),
        ("long_play_true_geometry", lambda: {
            scene: long_play(pipe, args.long_frames, out / f"rollout_1000_{scene}_true_geometry.png", scene_name=scene,
                             true_geometry=True)
            for scene in (["plain_1", *long_scenes] if args.long_play_true_geometry else [])
        }),
    ):
        t = time.time()
        result[name] = fn()
        print(f"{name}: {time.time() - t:.0f} s", file=sys.stderr, flush=True)
    result["seconds"] = time.time() - t0
    for name, text in (("measure.json", json.dumps(result, indent=2) + "\n"), ("measure.md", markdown(result))):
        write_text_atomic(out / name, text)
    print(markdown(result))
    return 0


sys.exit(main())
