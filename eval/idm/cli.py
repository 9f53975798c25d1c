"""`python -m eval.idm train|test`: train an IDM, or score one on held-out true clips."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from eval.idm.config import IDMTrainConfig
from eval.idm.data import clips_from_folder, simulated_clips, suite_clips
from eval.idm.model import DEFAULT_PATH, IDMConfig, InverseDynamicsModel
from eval.idm.train import accuracy, train_idm


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    train = sub.add_parser("train", help="train an IDM on simulated (or recorded) clips")
    train.add_argument("--out", type=Path, default=DEFAULT_PATH, help="checkpoint folder to write")
    train.add_argument("--data", type=Path, default=None, help="recorded clips to add to the simulated ones")
    train.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget, simulation and training together")
    train.add_argument(
        "--pool-clips", type=int, default=1200, help="simulated clips held at once (fresh ones replace the oldest)"
    )
    train.add_argument("--pair-input", choices=("difference", "both"), default="difference", help="what the pair network sees")
    train.add_argument("--hidden", type=int, default=IDMConfig.hidden, help="GRU width per direction")
    train.add_argument("--gru-layers", type=int, default=IDMConfig.gru_layers, help="stacked GRU layers")
    train.add_argument(
        "--simulate-share", type=float, default=IDMTrainConfig.simulate_share, help="share of the time spent simulating"
    )
    train.add_argument(
        "--benchmark-share", type=float, default=IDMTrainConfig.benchmark_share, help="share of benchmark-like clips"
    )
    train.add_argument(
        "--key-camera-share", type=float, default=IDMTrainConfig.key_camera_share,
        help="share of benchmark-like clips holding a key while turning",
    )
    train.add_argument(
        "--lr", type=float, default=IDMTrainConfig.lr, help="peak learning rate (cosine decay over the time budget)"
    )
    train.add_argument("--init", type=Path, default=None, help="a trained IDM folder to continue from (same architecture)")
    train.add_argument("--seed", type=int, default=0, help="0..9: which block of training worlds, and the initialisation")
    train.add_argument(
        "--suite-scenes", type=int, default=8, help="score the benchmark (N scenes x 76 actions) after training; 0 skips"
    )
    train.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 trains fastest on a busy machine)")
    test = sub.add_parser("test", help="score a trained IDM on held-out true clips")
    test.add_argument("--model", type=Path, default=DEFAULT_PATH)
    test.add_argument("--data", type=Path, default=None, help="recorded clips folder (default: simulate)")
    test.add_argument("--clips", type=int, default=40)
    test.add_argument(
        "--player", choices=("random", "benchmark", "suite"), default="random",
        help="simulated test clips: random play, benchmark-like, or the benchmark itself (--scenes x 76 actions)",
    )
    test.add_argument("--scenes", type=int, default=8, help="with --player suite: start scenes (one per biome first)")
    test.add_argument("--threads", type=int, default=2)


def main(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    if args.action == "train":
        cfg = IDMTrainConfig(
            minutes=args.minutes, pool_clips=args.pool_clips, seed=args.seed, benchmark_share=args.benchmark_share,
            suite_scenes=args.suite_scenes, simulate_share=args.simulate_share, key_camera_share=args.key_camera_share,
            lr=args.lr, init=str(args.init) if args.init is not None else "",
            model=IDMConfig(pair_input=args.pair_input, hidden=args.hidden, gru_layers=args.gru_layers),
        )
        info = train_idm(cfg, args.out, args.data)
        print(json.dumps(info["held_out"], indent=2))
        return 0
    model = InverseDynamicsModel.from_pretrained(args.model)
    if args.data is not None:
        clips = clips_from_folder(args.data, args.clips)
    elif args.player == "suite":
        clips = suite_clips(args.scenes)
    else:
        first = IDMTrainConfig().test_seed_offset + 500 + (50_000 if args.player == "benchmark" else 0)
        clips = simulated_clips([first + i for i in range(args.clips)], 65, args.player)
    print(json.dumps(accuracy(model, clips), indent=2))
