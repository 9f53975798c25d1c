"""Score a world model (any checkpoint, any quant method), a folder of videos, the simulator itself or a baseline
with GameWorld Score's dimensions plus fidelity to the simulator; write a JSON, Markdown and HTML report.

    worldmodel eval --model default --quick --out runs/eval/fp32          # the shipped model, 8x8 videos
    worldmodel eval --model default --quant int8 --out runs/eval/int8     # full suite: 32 scenes x 76 actions
    worldmodel eval --ground-truth --quick --out runs/eval/gt             # the simulator's own videos
    worldmodel eval --baseline frozen --quick --out runs/eval/frozen      # frozen | shuffled | noise | mismatched
    worldmodel eval --videos DIR --out runs/eval/mine                     # NAME.mp4 + NAME.jsonl (ours or MineRL)
    worldmodel eval --videos DIR --protocol gameworld --out runs/eval/gw  # {prefix}_{action}.mp4, GameWorld Score's way
    worldmodel eval --leaderboard runs/eval/*                             # one table from several reports
    worldmodel eval --compare runs/eval/int8 runs/eval/fp32              # paired differences: which are real
    torchrun --standalone --nproc-per-node 4 -m app.cli eval --model default --out runs/eval/full   # sharded
    worldmodel eval --assemble runs/eval/full                             # the report from a sharded folder
    worldmodel eval --train-idm sim --out runs/idm                        # train an inverse dynamics model (the first stage
                                                                          # of assets/idm; its MODEL_CARD.md lists the rest)

Results are cached per video under OUT/videos, so a stopped run resumes; a folder that holds another run's
results is never overwritten without --force. A video that cannot be read or does not fit its actions is
reported as failed (exit status 1) and the others are scored; when none can be, exit status 2.
`--protocol gameworld` aligns actions and scores as Matrix-Game's GameWorld Score does (eval/suite.py).
Under torchrun the videos are split over the ranks and the last rank to finish writes the report
(eval/shard.py); every score carries a 95% interval (eval/bootstrap.py).
docs/EVAL.md describes every dimension, its scorer and what still differs from the paper's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

QUANTS = ("int8", "lut4", "lut3")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from data.alignment import PROTOCOLS
    from eval import scorers
    from eval.baselines import BASELINES

    src = parser.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="PATH|default", help="a world model checkpoint folder, or `default`")
    src.add_argument("--videos", type=Path, metavar="DIR",
                     help="a folder of NAME.mp4 + NAME.jsonl action files; with --protocol gameworld, {prefix}_{action}.mp4")
    src.add_argument("--ground-truth", action="store_true", help="score the simulator's own videos")
    src.add_argument("--baseline", choices=BASELINES, help="score a deliberately broken baseline")
    src.add_argument("--leaderboard", type=Path, nargs="+", metavar="REPORT", help="combine report folders into one table")
    src.add_argument("--compare", type=Path, nargs=2, metavar=("A", "B"),
                     help="paired differences A - B with 95%% intervals, for two runs over the same videos")
    src.add_argument("--assemble", type=Path, metavar="OUT",
                     help="write the report of a (sharded) run folder whose videos are all in")
    src.add_argument("--train-idm", metavar="DATA|sim", help="train the inverse dynamics model (sim: simulated clips only)")
    parser.add_argument("--quant", choices=QUANTS, help="quantize the model's DiT after loading")
    parser.add_argument("--out", type=Path, help="output folder (report + per-video cache)")
    parser.add_argument("--quick", action="store_true", help="8 scenes x 8 actions x 33 frames (minutes on a CPU)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="ours",
                        help="ours (line t labels frame t -> t+1) or gameworld (Matrix-Game's alignment, GameWorld Score's "
                        "folder layout {prefix}_{action}.mp4, every frame scored, 3D on DROID-SLAM's scale)")
    parser.add_argument("--scenes", type=int, help="override: number of start scenes (1-32)")
    parser.add_argument("--actions", type=int, help="override: number of benchmark actions (1-76)")
    parser.add_argument("--frames", type=int, help="override: frames per video (5-65)")
    parser.add_argument("--batch", type=int, default=16, help="videos a world model generates together")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed of the world model")
    parser.add_argument("--idm", type=Path, default=None, help="inverse dynamics model folder (default assets/idm)")
    parser.add_argument("--force", action="store_true", help="discard another run's results in --out")
    parser.add_argument("--minutes", type=float, default=20.0, help="with --train-idm: training time budget")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads per process; scale with torchrun ranks instead: one thread each gives the same "
                        "numbers whatever the rank count (torch's reductions depend on the thread count); 0: torch's choice")
    scorers.add_arguments(parser)


def _suite_config(args: argparse.Namespace):
    from dataclasses import replace

    from eval.suite import FULL, QUICK

    cfg = QUICK if args.quick else FULL
    overrides = {k: getattr(args, k) for k in ("scenes", "actions", "frames") if getattr(args, k) is not None}
    return replace(cfg, batch=args.batch, protocol=args.protocol, **overrides)


def _source(args: argparse.Namespace, cfg):
    from eval.suite import BaselineSource, ModelSource, SimulatorSource, pick_actions

    if args.model is not None:
        import torch

        from eval.shard import rank_device

        device = rank_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return ModelSource(None if args.model == "default" else args.model, args.quant, device, args.seed)
    if args.quant is not None:
        raise ValueError("--quant applies to --model only")
    if args.ground_truth:
        return SimulatorSource()
    from data.alignment import our_actions

    actions = {name: tuple(our_actions(seq, cfg.protocol)) for name, seq in pick_actions(cfg.actions).items()}
    return BaselineSource(args.baseline, actions, cfg.size)


def _train_idm(args: argparse.Namespace) -> int:
    import torch

    from eval.idm.config import IDMTrainConfig
    from eval.idm.model import DEFAULT_PATH
    from eval.idm.train import train_idm

    torch.set_num_threads(args.threads or 1)  # one thread trains fastest on a shared machine
    data = None if args.train_idm == "sim" else Path(args.train_idm)
    info = train_idm(IDMTrainConfig(minutes=args.minutes, seed=args.seed), args.out or DEFAULT_PATH, data)
    print(json.dumps(info["held_out"], indent=2))
    return 0


def main(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.leaderboard:
        from eval.report import leaderboard

        try:
            print(leaderboard(args.leaderboard))
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    if args.compare:
        from eval.compare import compare, markdown

        print(markdown(*args.compare, compare(*args.compare)))
        return 0
    if args.assemble:
        return _assemble(args.assemble)
    if args.train_idm:
        return _train_idm(args)
    if args.out is None:
        print("error: --out DIR is required", file=sys.stderr)
        return 2
    if not (args.model or args.videos or args.ground_truth or args.baseline):
        print("error: choose what to score: --model, --videos, --ground-truth or --baseline", file=sys.stderr)
        return 2

    from eval import scorers as paper
    from eval import shard
    from eval.idm.model import DEFAULT_PATH, InverseDynamicsModel
    from eval.report import markdown_table
    from eval.suite import FolderInUse, Scorers, make_jobs, run_info, run_suite, simulate

    try:
        plugged = paper.resolve_scorers({s.flag: getattr(args, s.flag) for s in paper.PAPER_SCORERS})
    except paper.ScorerUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    idm_path = args.idm or DEFAULT_PATH
    try:
        rank, world = shard.rank_and_world()
        cfg = _suite_config(args)
        scorers = Scorers(InverseDynamicsModel.from_pretrained(idm_path), plugged, cfg.protocol)
        if args.videos is not None:
            from eval.videos import VideoFolder

            source = VideoFolder(args.videos, cfg.protocol, cfg.size)
            jobs = source.jobs()
            truths = source.truth
        else:
            source = _source(args, cfg)
            jobs = make_jobs(cfg)
            truths = None
    except (FileNotFoundError, ValueError) as err:  # a missing checkpoint, folder or file; a bad action file
        print(f"error: {err}", file=sys.stderr)
        return 2
    info = run_info(source, cfg, scorers, str(idm_path))
    try:
        shard.prepare(args.out, info, jobs, args.force, rank)  # rank 0 claims the folder; the others wait for it
    except FolderInUse as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = run_suite(source, jobs, args.out, scorers, cfg, truths, batches=shard.my_batches(jobs, cfg.batch, rank, world),
                     rank=rank, world=world)
    failed = [r for r in rows if r["kind"] == "failed"]
    if world == 1 and len(failed) == len(rows):  # (a rank that exits non-zero makes torchrun stop the others)
        print(f"error: no video could be scored ({len(failed)} failed; the first: {failed[0]['error']})", file=sys.stderr)
        return 2
    left = shard.missing(args.out, [j.name for j in jobs])
    if left:  # other ranks are still at work: the last one to finish writes the report
        print(f"rank {rank}/{world}: its {len(rows)} videos are done; {len(left)} of {len(jobs)} are still to come "
              f"from other ranks, and the last to finish writes the report (or: worldmodel eval --assemble {args.out})")
        return 0
    summary = shard.assemble(args.out, jobs, truths or (lambda j: simulate(j, cfg.size)))
    print(markdown_table({info["source"]: summary}))
    print(f"\nreport: {args.out / 'report.html'} (and report.json, report.md)")
    if summary["failed_videos"]:
        print(f"{summary['failed_videos']} of {len(jobs)} videos could not be scored (listed in report.md)", file=sys.stderr)
        return 1
    return 0


def _assemble(out: Path) -> int:
    from eval.report import markdown_table
    from eval.shard import assemble

    summary = assemble(out)
    print(markdown_table({json.loads((out / "run.json").read_text())["source"]: summary}))
    print(f"\nreport: {out / 'report.html'} (and report.json, report.md)")
    if summary["failed_videos"]:
        print(f"{summary['failed_videos']} videos could not be scored (listed in report.md)", file=sys.stderr)
        return 1
    return 0
