"""Train the autoencoder, then the world model, from a JSON config.

    worldmodel train --config worldmodel/configs/default.json --out runs/wm-default [--resume]
    torchrun --nproc_per_node 2 -m worldmodel.train --config ... --out ...     (DDP: gloo on CPU, nccl on GPU)

Stages (the config's "stages"): "autoencoder" trains the frame autoencoder on single frames; "world" encodes the
dataset once into cached latents, then trains the causal DiT by diffusion forcing on runs of latent frames;
"pitch" (asked for by name, run first) trains the pitch estimator that tells a start picture's pitch
(worldmodel.pitch): a pitch-only run with init_from writes OUT/pipeline as that pipeline with the new estimator.
Each stage stops at its step count or its time budget, whichever comes first, and saves. OUT holds:

    OUT/pipeline/         the result (autoencoder + EMA DiT [+ pitch]), a WorldPipeline folder: copy it to assets/
    OUT/autoencoder/, OUT/pitch/    the autoencoder and pitch stages' results
    OUT/ckpt_ae/, OUT/ckpt_world/, OUT/ckpt_pitch/   resumable checkpoints (model, EMA, optimizer, step, RNG), written atomically
    OUT/latents.safetensors         the latent cache
    OUT/log.jsonl, OUT/loss.png     losses and the action-responsiveness eval, as numbers and as a plot

From the first eval on, the log shows how much the model listens to the actions: the error of its predicted next
frame with the true action, with the null action and with a mirrored one (left<->right, forward<->back, camera
negated). A model that ignores actions has all three equal.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from worldmodel.autoencoder import FrameAutoencoder
from worldmodel.config import TrainConfig, load_train_config, to_dict
from worldmodel.distributed import rank_and_world, setup_dist
from worldmodel.dit import CausalDiT
from worldmodel.run_folder import check_run_folder, clear_for_fresh_run
from worldmodel.train_autoencoder import train_autoencoder
from worldmodel.train_pitch import train_pitch, with_pitch
from worldmodel.train_world import train_world
from worldmodel.training import WindowsFactory
from worldmodel.weights import write_json


def run(cfg: TrainConfig, out: Path, resume: bool = False, windows: WindowsFactory | None = None, threads: int = 0,
        force: bool = False) -> CausalDiT | None:
    """Run the configured stages into `out` (same code with or without torchrun). Returns the EMA DiT, if trained.

    A folder that holds an earlier run is refused unless resume (continue it) or force (start over in it).
    threads > 0 sets torch's CPU threads per process (0 leaves torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)
    check_run_folder(out, cfg.stages, resume, force)  # before any rank can write: setup_dist waits for all of them
    if windows is None:  # the clips on disk: checked before any work, read at the model's frame size
        from worldmodel.training_clips import checked_windows

        windows = checked_windows(cfg)
    dd = setup_dist()
    try:
        if dd.main:
            out.mkdir(parents=True, exist_ok=True)
            if not resume:
                clear_for_fresh_run(out, cfg.stages)
            write_json(out / "config.json", to_dict(cfg))
        dd.barrier()
        if "pitch" in cfg.stages:  # first, so a world stage after it saves the estimator in its pipeline
            train_pitch(cfg, out, resume, dd)
        if cfg.stages == ("pitch",):
            if dd.main and cfg.init_from:
                with_pitch(Path(cfg.init_from), out)
            return None
        if "autoencoder" in cfg.stages:
            ae = train_autoencoder(cfg, out, resume, dd, windows)
        elif (out / "autoencoder" / "model.safetensors").is_file():  # this run's own autoencoder stage, run before
            ae = FrameAutoencoder.from_pretrained(out / "autoencoder").to(dd.device)
        elif cfg.init_from:
            ae = FrameAutoencoder.from_pretrained(Path(cfg.init_from) / "autoencoder").to(dd.device)
        else:
            raise ValueError("the world stage needs an autoencoder: add the 'autoencoder' stage, set init_from, "
                             f"or train one into {out / 'autoencoder'} first")
        ae.eval().requires_grad_(False)
        ema = None
        if "world" in cfg.stages:
            ema = train_world(cfg, out, resume, ae, dd, windows)
            if dd.main:
                print(f"done: {out / 'pipeline'}", file=sys.stderr)
        return ema
    finally:
        if dd.on:
            dist.destroy_process_group()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config JSON (see worldmodel/configs/)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/<config name> in the current folder)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    parser.add_argument("--force", action="store_true",
                        help="start over in an --out that holds an earlier run (its log, checkpoints and pipeline are replaced)")
    parser.add_argument("--data", default=None, help="clip folder, overriding the config's data")
    parser.add_argument("--max-minutes", type=float, default=None, help="time budget of the world stage, overriding the config")
    parser.add_argument("--steps", type=int, default=None, help="world-model steps, overriding the config")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads per process; on a shared machine 1 is far faster than 2 (OpenMP threads stall when a core "
        "is busy); on an idle 2-core machine use 2, or torchrun with 2 processes of 1 (0 = torch's default)",
    )


def main(args: argparse.Namespace) -> int:
    if args.resume and args.force:
        raise ValueError("--resume continues the run in --out, --force starts it over: pass one of them")
    cfg = load_train_config(args.config)
    overrides = {}
    if args.data:
        overrides["data"] = os.path.abspath(args.data)
    if args.max_minutes is not None:
        overrides["max_minutes"] = args.max_minutes
    if args.steps is not None:
        overrides["steps"] = args.steps
    cfg = dataclasses.replace(cfg, **overrides)
    if not cfg.data:
        raise ValueError("no data: set \"data\" in the config or pass --data")
    if not os.path.isdir(cfg.data):
        raise ValueError(f"{cfg.data}: no such folder of clips (the config's \"data\", or --data)")
    if cfg.init_from and not (Path(cfg.init_from) / "config.json").is_file():
        # Checked here, before any work, so a missing starting point is named as the config's, not as a file deep inside it.
        raise ValueError(f"{cfg.init_from}: not a pipeline folder (the config's \"init_from\", the weights this run starts "
                         "from); train that run first or point init_from at a pipeline folder")
    if cfg.dit.base_input and "world" in cfg.stages and rank_and_world()[1] > 1:
        # Checked before any work: such a run would otherwise stop only after encoding every clip.
        raise ValueError("a DiT that reads its base (dit.base_input, memory-made bases) trains in one process: run "
                         "`worldmodel train` (or python -m worldmodel.train) with --threads 2 instead of torchrun")
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    run(cfg, out, resume=args.resume, threads=args.threads, force=args.force)
    return 0


if __name__ == "__main__":  # torchrun -m worldmodel.train ...
    p = argparse.ArgumentParser(prog="python -m worldmodel.train")
    add_arguments(p)
    sys.exit(main(p.parse_args()))
