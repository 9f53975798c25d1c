"""Record labelled gameplay clips from the voxel world: `worldmodel record`.

Each clip is a fresh world (its seed derived from --seed and the clip index, its biome
cycled over the chosen biomes) played by a scripted player, written as flat files in the
output folder (see docs/FORMATS.md):

    NAME.frames.npy   uint8 (T, H, W, 3), the lossless training form (np.save, memory-mappable)
    NAME.mp4          the same frames as browser-playable H.264 (yuv420p, 20 fps); not with --no-video
    NAME.jsonl        one VPT-recorder-shaped action line per frame, with the player's pose
    NAME.meta.json    seed, biome, size, fps, frame count, player, versions: written LAST

Every file is written under a temporary name and moved into place (data/clip_files.py), and
meta.json goes last, so a clip is complete exactly when its meta.json exists. A killed
recording leaves no half clip that looks complete; rerunning the same command skips the
complete clips and redoes the others. A complete clip is never deleted or overwritten.
DIR/record.json remembers the settings, and a rerun with different settings is refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from data.actions import FPS
from data.clip_files import CLIP_FORMAT, CLIP_FORMAT_VERSION, created_now, versions, write_clip
from data.files import write_bytes_atomic
from data.terrain import BIOMES
from data.worker_death import die_with_parent

MANIFEST_NAME = "record.json"
# The settings that decide what a clip holds; the manifest compares these on a rerun.
# `frames` (the total) may change between runs: more frames means more clips.
CONTENT_SETTINGS: tuple[str, ...] = ("clip_frames", "size", "seed", "player", "biomes")


@dataclass(frozen=True)
class RecordConfig:
    """What to record. `frames` is the total over all clips; the last clip may be shorter."""

    frames: int
    clip_frames: int = 500
    size: int = 64
    seed: int = 0
    player: str = "mixed"
    biomes: tuple[str, ...] = BIOMES
    video: bool = True  # also write NAME.mp4; training reads frames.npy, so a training-only folder can skip it

    def __post_init__(self) -> None:
        object.__setattr__(self, "biomes", tuple(self.biomes))
        if self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        if self.clip_frames < 1:
            raise ValueError(f"clip_frames must be at least 1, got {self.clip_frames}")
        # H.264 in yuv420p needs even sides; below 16 pixels there is nothing to see.
        if self.size < 16 or self.size % 2:
            raise ValueError(f"size must be an even number of pixels >= 16, got {self.size}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not self.biomes:
            raise ValueError("biomes is empty; give at least one of " + ", ".join(BIOMES))
        unknown = [b for b in self.biomes if b not in BIOMES]
        if unknown:
            raise ValueError(f"unknown biome(s) {unknown}; known biomes: {', '.join(BIOMES)}")
        if not self.player:
            raise ValueError("player name is empty")

    def settings(self) -> dict[str, Any]:
        """The content settings as plain JSON values (what record.json stores)."""
        values = asdict(self)
        return {key: list(values[key]) if key == "biomes" else values[key] for key in CONTENT_SETTINGS}


@dataclass(frozen=True)
class ClipPlan:
    """One clip to record: its file stem, world and player seeds, biome and length."""

    index: int
    name: str
    seed: int
    player_seed: int
    biome: str
    frames: int


def clip_seeds(seed: int, index: int) -> tuple[int, int]:
    """(world seed, player seed) for clip `index`; independent of worker scheduling."""
    world, player = np.random.SeedSequence([seed, index]).generate_state(2)
    return int(world) & 0x7FFFFFFF, int(player) & 0x7FFFFFFF


def plan_clips(cfg: RecordConfig) -> list[ClipPlan]:
    """Split cfg.frames into clips of cfg.clip_frames (the last one takes the remainder)."""
    plans = []
    for index, start in enumerate(range(0, cfg.frames, cfg.clip_frames)):
        world_seed, player_seed = clip_seeds(cfg.seed, index)
        plans.append(ClipPlan(
            index=index,
            name=f"clip_{index:06d}",
            seed=world_seed,
            player_seed=player_seed,
            biome=cfg.biomes[index % len(cfg.biomes)],
            frames=min(cfg.clip_frames, cfg.frames - start),
        ))
    return plans


# --- writing one clip -------------------------------------------------------------------

def clip_meta(plan: ClipPlan, cfg: RecordConfig, biome: str, frames: np.ndarray) -> dict[str, Any]:
    return {
        "format": CLIP_FORMAT,
        "format_version": CLIP_FORMAT_VERSION,
        "name": plan.name,
        "index": plan.index,
        "seed": plan.seed,
        "biome": biome,
        "width": int(frames.shape[2]),
        "height": int(frames.shape[1]),
        "fps": FPS,
        "frames": int(frames.shape[0]),
        "player": {"name": cfg.player, "seed": plan.player_seed},
        "record": cfg.settings(),
        "versions": versions(),
        "created": created_now(),
    }


def step_extra(game: Any) -> dict[str, Any] | None:
    """What the last step did (block broken or placed, hand swing), as JSON for the line's "wm" field."""
    info = getattr(game, "last_info", None)
    if info is None or not dataclasses.is_dataclass(info):
        return None

    def plain(value: Any) -> Any:  # numpy scalars and tuples -> JSON values
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return value.item() if isinstance(value, np.generic) else value

    return {f.name: plain(getattr(info, f.name)) for f in dataclasses.fields(info)}


def play_clip(game: Any, player: Any, frames: int) -> tuple[np.ndarray, list[Any], list[Any], list[Any]]:
    """Play `frames` frames. actions[t] is pressed while frames[t] is shown and makes frames[t + 1].

    Returns (frames uint8 (T, H, W, 3), actions, poses, extras): poses[t] is the pose frames[t]
    was drawn from, extras[t] what actions[t] did. The last action is played too, so its
    extras are known, but the frame it makes is not kept: a clip has as many actions as frames.
    """
    obs = game.reset()
    shown = np.empty((frames, *obs.shape), np.uint8)
    actions, poses, extras = [], [], []
    for t in range(frames):
        shown[t] = obs
        poses.append(getattr(game, "pose", None))
        act = player.act(game)
        actions.append(act)
        obs = game.step(act)
        extras.append(step_extra(game))
    return shown, actions, poses, extras


def default_game_factory(seed: int, biome: str, size: int) -> Any:
    from data.game import Game

    return Game(seed, biome=biome, size=size)


def default_player_factory(name: str, seed: int) -> Any:
    from data.players import make_player

    return make_player(name, seed)


GameFactory = Callable[[int, str, int], Any]
PlayerFactory = Callable[[str, int], Any]


def record_clip(
    plan: ClipPlan,
    cfg: RecordConfig,
    out: Path,
    game_factory: GameFactory = default_game_factory,
    player_factory: PlayerFactory = default_player_factory,
) -> int:
    """Record one clip into `out`; meta.json is written last. Returns the number of frames."""
    for stale in out.glob(f".{plan.name}.*"):  # temp files of a killed attempt at this clip
        stale.unlink()
    game = game_factory(plan.seed, plan.biome, cfg.size)
    player = player_factory(cfg.player, plan.player_seed)
    frames, actions, poses, extras = play_clip(game, player, plan.frames)
    biome = getattr(getattr(game, "world", None), "biome", plan.biome)
    meta = clip_meta(plan, cfg, str(biome), frames)
    write_clip(out, plan.name, frames, actions, meta, fps=FPS, frames_npy=True, video=cfg.video, poses=poses,
               extras=extras)
    return plan.frames


# --- the folder: manifest, resume, refusal ----------------------------------------------

class RecordRefused(RuntimeError):
    """The output folder holds clips that this command must not mix with or overwrite."""


def is_complete(out: Path, name: str) -> bool:
    return (out / f"{name}.meta.json").is_file()


def check_folder(out: Path, cfg: RecordConfig, plans: list[ClipPlan], force: bool) -> list[str]:
    """Refuse a folder recorded with other settings; return warnings (only with force).

    A complete clip that the plan would record differently is an error without --force;
    with --force it is kept as it is (never overwritten) and named in a warning.
    """
    warnings: list[str] = []
    manifest_path = out / MANIFEST_NAME
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
            old = manifest["settings"]
        except (ValueError, KeyError, TypeError) as err:
            raise RecordRefused(f"{manifest_path}: unreadable manifest ({err}); fix or remove it") from err
        new = cfg.settings()
        changed = {k: (old.get(k), new[k]) for k in CONTENT_SETTINGS if old.get(k) != new[k]}
        if changed:
            diff = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in changed.items())
            message = f"{out} holds clips recorded with other settings ({diff})"
            if not force:
                raise RecordRefused(message + "; use another --out, or --force to add to it anyway "
                                    "(complete clips are never overwritten)")
            warnings.append(message)
    else:
        existing = sorted(p.name for p in out.iterdir() if p.name.endswith((".meta.json", ".mp4")))
        if existing:
            message = (f"{out} already holds clips ({', '.join(existing[:3])}{', ...' if len(existing) > 3 else ''}) "
                       f"but no {MANIFEST_NAME}")
            if not force:
                raise RecordRefused(message + "; use another --out, or --force to add to it anyway "
                                    "(complete clips are never overwritten)")
            warnings.append(message)

    for plan in plans:
        meta_path = out / f"{plan.name}.meta.json"
        if not meta_path.is_file():
            continue
        try:
            meta = json.loads(meta_path.read_text())
            have = (meta["frames"], meta["seed"], meta["width"], meta["height"], meta["player"]["name"])
        except (ValueError, KeyError, TypeError) as err:
            raise RecordRefused(f"{meta_path}: unreadable clip metadata ({err}); "
                                "it is kept as it is: move it away to re-record that clip") from err
        want = (plan.frames, plan.seed, cfg.size, cfg.size, cfg.player)
        if have != want:
            message = (f"{meta_path}: complete clip differs from this run's plan "
                       f"(frames, seed, width, height, player: {have} there, {want} now)")
            if not force:
                raise RecordRefused(message + "; complete clips are never overwritten: use another --out")
            warnings.append(message + "; kept as it is")
    return warnings


def write_manifest(out: Path, cfg: RecordConfig) -> None:
    manifest = {"format": CLIP_FORMAT, "format_version": CLIP_FORMAT_VERSION,
                "settings": cfg.settings(), "frames": cfg.frames}
    write_bytes_atomic(out / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())


def _record_job(job: tuple[ClipPlan, RecordConfig, str, GameFactory, PlayerFactory]) -> int:
    plan, cfg, out, game_factory, player_factory = job
    return record_clip(plan, cfg, Path(out), game_factory, player_factory)


@dataclass
class RecordReport:
    planned: int = 0  # clips in the plan
    skipped: int = 0  # complete clips left as they were
    recorded: int = 0  # clips written by this run
    frames: int = 0  # frames written by this run
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def record(
    cfg: RecordConfig,
    out: Path,
    workers: int = 2,
    force: bool = False,
    progress: bool = True,
    game_factory: GameFactory = default_game_factory,
    player_factory: PlayerFactory = default_player_factory,
) -> RecordReport:
    """Record cfg into `out`, skipping complete clips. Raises RecordRefused on a mismatched folder."""
    from tqdm import tqdm

    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RecordRefused(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    plans = plan_clips(cfg)
    report = RecordReport(planned=len(plans))
    report.warnings = check_folder(out, cfg, plans, force)
    write_manifest(out, cfg)

    todo = [plan for plan in plans if not is_complete(out, plan.name)]
    report.skipped = len(plans) - len(todo)
    done_frames = sum(plan.frames for plan in plans) - sum(plan.frames for plan in todo)
    jobs = [(plan, cfg, str(out), game_factory, player_factory) for plan in todo]
    bar = tqdm(total=cfg.frames, initial=done_frames, unit="frame", unit_scale=True,
               desc=f"record {out.name}", disable=not progress, smoothing=0.1)
    start = time.perf_counter()
    try:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                report.frames += _record_job(job)
                report.recorded += 1
                bar.update(job[0].frames)
        else:
            # fork: workers start in milliseconds and inherit the factories (tests pass fakes).
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            # The workers die with this process: a killed recording must not go on writing into the folder.
            with context.Pool(min(workers, len(jobs)), initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                for frames in pool.imap_unordered(_record_job, jobs, chunksize=1):
                    report.frames += frames
                    report.recorded += 1
                    bar.update(frames)
    finally:
        bar.close()
        report.seconds = time.perf_counter() - start
    return report


# --- the command ------------------------------------------------------------------------

def parse_biomes(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return BIOMES
    return tuple(name.strip() for name in text.split(",") if name.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--frames", type=int, required=True, help="frames to record in total, over all clips")
    parser.add_argument("--clip-frames", type=int, default=500, help="frames per clip (a fresh world each)")
    parser.add_argument("--size", type=int, default=64, help="frame width and height in pixels")
    parser.add_argument("--seed", type=int, default=0, help="base seed; clip i's world seed derives from it and i")
    parser.add_argument("--player", default="mixed", help="scripted player (see data/players.py)")
    parser.add_argument("--biomes", default="all", help="'all' or a comma list of: " + ",".join(BIOMES))
    parser.add_argument("--workers", type=int, default=2, help="recording processes")
    parser.add_argument("--no-video", action="store_true",
                        help="skip each clip's mp4 (training reads frames.npy; a machine without PyAV can record)")
    parser.add_argument("--force", action="store_true",
                        help="add to a folder recorded with other settings (complete clips are never overwritten)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from data.players import PLAYERS

    try:
        if args.player not in PLAYERS:
            raise ValueError(f"unknown player {args.player!r}; choose one of {', '.join(PLAYERS)}")
        cfg = RecordConfig(frames=args.frames, clip_frames=args.clip_frames, size=args.size, seed=args.seed,
                           player=args.player, biomes=parse_biomes(args.biomes), video=not args.no_video)
        report = record(cfg, args.out, workers=args.workers, force=args.force, progress=not args.no_progress)
    except (ValueError, RecordRefused) as err:
        print(f"worldmodel record: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # --out in a place that cannot hold it: /proc, a read-only disk, no permission
        print(f"worldmodel record: error: cannot write to {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.out}: {report.planned} clips planned, {report.skipped} already complete, "
          f"{report.recorded} recorded ({report.frames} frames in {report.seconds:.1f} s, "
          f"{report.frames_per_second:.0f} frames/s)")
    return 0
