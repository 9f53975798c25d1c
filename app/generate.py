"""Generate videos in batch from a job file: `worldmodel generate JOBS --out DIR`.

JOBS is jsonl, one job per line (blank lines and lines starting with # are skipped):

    {"id": "walk-01", "start": "plain_0", "actions": "scripts/walk.jsonl"}
    {"id": "pic-02", "start": "pictures/cave.png", "actions": [{"forward": 1, "camera": [0, 5]}], "seed": 3}

    id       letters, digits, ".", "_", "-" (it names the output files); unique in the file
    start    a scene name or index (data/scenes.py), or a picture (a path relative to JOBS' folder)
    actions  an action script (our VPT jsonl or MineRL/VPT dicts; a path relative to JOBS' folder),
             or the actions inline as a JSON list of either kind
    frames   optional: play only the first `frames` actions (lines, under --protocol gameworld)
    seed     optional (default 0): fixes the model's sampling noise
    quant    optional (default --quant): fp32, int8, lut4 or lut3

For each job it writes, each file under a temporary dot-name then moved into place:

    DIR/ID.mp4        H.264, the start frame and one frame per action
    DIR/ID.jsonl      one action line per frame (VPT recorder shaped); the last line is a no-op pad
    DIR/ID.meta.json  written last: a job is done exactly when it exists and was made by the same job

These are clips in the project's clip format (docs/FORMATS.md), so data.clips.read_clip and the
evaluator read them as they are. A rerun skips the finished jobs and redoes the rest, so a killed
run leaves nothing half-written that looks finished. meta.json keeps a digest of what made the
video (model, start, actions, seed, quant): a job line edited since, or another --model, does not
count as done; it is refused (the old video stays) unless --force, which makes it again. Bad jobs
are reported with JOBS:line and the others still run; the exit status is 1 when any job failed.

--protocol gameworld reads each action file as Matrix-Game does (data/alignment.py): N lines make an N-frame
video, line t conditioning frame t; the first line belongs to the start frame, which is given, so it is not
played. A 65-line Bench76 file (GameWorld Score's test_forward.jsonl, ...) gives a 65-frame video, as there.
The jsonl written beside it is in our alignment (lines 2..N, then the no-op pad).

Spread over processes or machines with torchrun; job i goes to rank i % WORLD_SIZE (no collective
operations are needed, so nothing is initialised):

    torchrun --standalone --nproc-per-node 4 -m app.cli generate JOBS --out DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from app.scripts import ScriptError, parse_script_text, read_script
from app.worlds import (
    DEFAULT_MODEL,
    QUANTS,
    SIMULATOR,
    ImageError,
    SessionFactory,
    WorldFactory,
    model_label,
    resolve_start,
    roll_out,
    thread_count,
)
from data import clip_files
from data.actions import FPS, NOOP, Action
from data.alignment import PROTOCOLS, check_protocol
from worldmodel.distributed import rank_and_world

JOB_FIELDS: frozenset[str] = frozenset({"id", "start", "actions", "frames", "seed", "quant"})
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_JOB_FRAMES = 100_000  # far beyond any real job; stops a typo from running for days


class JobError(ValueError):
    """A job line that cannot run; the message names JOBS:line."""


@dataclass(frozen=True)
class Job:
    id: str
    start: str  # scene name/index, or an absolute picture path
    actions: tuple[Action, ...]
    actions_source: str  # the script's path, or "inline"
    seed: int
    quant: str
    where: str  # JOBS:line, for messages


# --- the job file -------------------------------------------------------------------------

def _start_of(value: Any, base: Path, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise JobError(f"{where}: 'start' must be a scene name or index, or a picture path; got {value!r}")
    path = Path(value) if Path(value).is_absolute() else base / value
    return str(path) if Path(value).suffix or "/" in value else value


def _actions_of(value: Any, base: Path, where: str) -> tuple[list[Action], str]:
    if isinstance(value, str):
        path = Path(value) if Path(value).is_absolute() else base / value
        return read_script(path, MAX_JOB_FRAMES), str(path)
    if isinstance(value, list):
        return parse_script_text(json.dumps(value), MAX_JOB_FRAMES, shown=f"{where} (inline actions)"), "inline"
    raise JobError(f"{where}: 'actions' must be a script path or a JSON list of actions; got {type(value).__name__}")


def parse_job(record: Any, base: Path, where: str, default_quant: str, protocol: str = "ours") -> Job:
    if not isinstance(record, dict):
        raise JobError(f"{where}: a job must be a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - JOB_FIELDS)
    if unknown:
        raise JobError(f"{where}: unknown field(s) {unknown}; a job has {', '.join(sorted(JOB_FIELDS))}")
    for name in ("id", "start", "actions"):
        if name not in record:
            raise JobError(f"{where}: missing {name!r}")
    job_id = record["id"]
    if not isinstance(job_id, str) or not ID_PATTERN.fullmatch(job_id):
        raise JobError(f"{where}: id {job_id!r} must be 1-128 letters, digits, '.', '_' or '-' (it names files)")
    try:
        actions, source = _actions_of(record["actions"], base, where)
    except ScriptError as err:
        raise JobError(f"{where}: {err}") from None
    frames = record.get("frames")
    if frames is not None:
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise JobError(f"{where}: 'frames' must be a positive integer, got {frames!r}")
        if frames > len(actions):
            raise JobError(f"{where}: 'frames' is {frames} but the script has only {len(actions)} actions")
        actions = actions[:frames]
    if check_protocol(protocol) == "gameworld":
        if len(actions) < 2:
            raise JobError(f"{where}: under --protocol gameworld the first action line belongs to the start frame; "
                           f"a video needs at least 2 lines, the script has {len(actions)}")
        actions = actions[1:]  # N lines -> the start frame + N - 1 generated ones (data/alignment.py)
    seed = record.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise JobError(f"{where}: 'seed' must be a non-negative integer, got {seed!r}")
    quant = record.get("quant", default_quant)
    if quant not in QUANTS:
        raise JobError(f"{where}: 'quant' must be one of {', '.join(QUANTS)}, got {quant!r}")
    start = _start_of(record["start"], base, where)
    return Job(job_id, start, tuple(actions), source, seed, quant, where)


def read_jobs(path: Path, default_quant: str = "fp32", protocol: str = "ours") -> list[Job]:
    """Every job in the file, checked before any runs (a typo on line 900 should not wait for 899 videos)."""
    if not path.is_file():
        raise JobError(f"{path}: no such job file")
    jobs, seen = [], {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise JobError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    for lineno, text in enumerate(lines, start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(text)
        except ValueError as err:
            raise JobError(f"{where}: not JSON ({err})") from None
        except RecursionError:
            raise JobError(f"{where}: JSON nested too deeply") from None
        job = parse_job(record, path.parent, where, default_quant, protocol)
        if job.id in seen:
            raise JobError(f"{where}: id {job.id!r} is already used on line {seen[job.id]}")
        seen[job.id] = lineno
        jobs.append(job)
    if not jobs:
        raise JobError(f"{path}: no jobs")
    return jobs


# --- one job ------------------------------------------------------------------------------

def output_paths(out: Path, job_id: str) -> dict[str, Path]:
    return {suffix: out / f"{job_id}{suffix}" for suffix in (".mp4", ".jsonl", ".meta.json")}


def job_digest(job: Job, model: str) -> str:
    """What the video depends on: the model, the start, the actions, the seed and the quant method."""
    content = {
        "model": model if model in (DEFAULT_MODEL, SIMULATOR) else str(Path(model).resolve()),
        "start": job.start, "seed": job.seed, "quant": job.quant,
        "actions": [[sorted(act.keys), list(act.camera)] for act in job.actions],
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]


def finished_by_another_job(out: Path, job: Job, model: str) -> str | None:
    """None when ID.meta.json is missing or was made by this job; else what differs, for the message."""
    path = out / f"{job.id}.meta.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        made_by = meta.get("job") if isinstance(meta, dict) else None
    except (ValueError, RecursionError):
        return "its meta.json is unreadable"
    if made_by == job_digest(job, model):
        return None
    if made_by is None:  # written before the digest was kept: compare what it says
        meta = meta if isinstance(meta, dict) else {}
        now = {"model": model_label(model), "quant": job.quant, "seed": job.seed, "actions": len(job.actions)}
        changed = [f"{k}: {meta.get(k)!r} there, {v!r} now" for k, v in now.items() if meta.get(k) != v]
        return "; ".join(changed) or None
    then = meta.get("job_fields") or {}
    now = {"model": model_label(model), "start": job.start, "quant": job.quant, "seed": job.seed,
           "actions": len(job.actions)}
    changed = [f"{k}: {then.get(k)!r} there, {v!r} now" for k, v in now.items() if then.get(k) != v]
    return "; ".join(changed) or "the actions differ"


def write_clip(out: Path, name: str, frames: np.ndarray, actions: list[Action],
               meta: dict[str, Any]) -> dict[str, Path]:
    """NAME.mp4, NAME.jsonl, then NAME.meta.json, each atomically; returns their paths.

    frames has one more entry than actions (the start); the jsonl gets a no-op pad for the
    last frame so the clip has one action line per frame, as every clip in this project.
    """
    if len(frames) != len(actions) + 1:
        raise ValueError(f"{len(frames)} frames for {len(actions)} actions; expected one more frame than actions")
    full = {
        "format": clip_files.CLIP_FORMAT, "format_version": clip_files.CLIP_FORMAT_VERSION, "name": name,
        "width": int(frames.shape[2]), "height": int(frames.shape[1]), "fps": FPS, "frames": int(len(frames)),
        **meta,
        "versions": clip_files.versions(),
        "created": clip_files.created_now(),
    }
    return clip_files.write_clip(out, name, frames, list(actions) + [NOOP], full, fps=FPS)


def temp_names(job_id: str) -> re.Pattern[str]:
    """The names of this job's temp files, and no other job's: `.ID.mp4.XXXXXXXX.tmp`, `.ID.jsonl.XXXXXXXX.tmp`
    and `.ID.meta.json.XXXXXXXX.tmp` (data.files: mkstemp's 8 random characters; older versions wrote
    `.ID.mp4.tmp`). A glob such as `.a.*.tmp` would also match job `a.b`'s files, which another process may be
    writing."""
    stem = re.escape(job_id)
    return re.compile(rf"\.{stem}\.(mp4|meta\.json|jsonl)(\.[A-Za-z0-9_]{{8}})?\.tmp")


def remove_stale_temps(out: Path, job_id: str) -> None:
    """Temp files a killed run left for this job (only this job's owner ever touches them)."""
    mine = temp_names(job_id)
    for tmp in out.glob(".*.tmp"):
        if mine.fullmatch(tmp.name):
            tmp.unlink(missing_ok=True)


def run_job(job: Job, factory: SessionFactory, model: str, out: Path) -> dict[str, Path]:
    remove_stale_temps(out, job.id)
    # Made again (--force): the old meta.json goes first, so a kill from here on leaves the job not done.
    (out / f"{job.id}.meta.json").unlink(missing_ok=True)
    try:
        start = resolve_start(job.start)
    except ValueError as err:  # ImageError included
        raise JobError(f"{job.where}: {err}") from None
    if model == SIMULATOR and start.scene is None:
        raise JobError(f"{job.where}: the simulator starts only from a scene, not from a picture")
    session = factory(model, job.quant, start, job.seed)
    t0 = time.perf_counter()
    frames = roll_out(session, start.image, list(job.actions))
    seconds = time.perf_counter() - t0
    meta = {
        "source": "worldmodel generate",
        "model": model_label(model), "quant": job.quant, "seed": job.seed,
        "start": start.name, "actions_source": job.actions_source, "actions": len(job.actions),
        "seconds": round(seconds, 3), "frames_per_second": round(len(job.actions) / max(seconds, 1e-9), 2),
        "job": job_digest(job, model),
        "job_fields": {"model": model_label(model), "start": job.start, "quant": job.quant, "seed": job.seed,
                       "actions": len(job.actions)},
    }
    return write_clip(out, job.id, frames, list(job.actions), meta)


# --- many jobs ----------------------------------------------------------------------------

@dataclass
class Report:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # finished by an earlier run
    failed: list[str] = field(default_factory=list)  # messages


def run_jobs(jobs: list[Job], out: Path, factory: SessionFactory, model: str, rank: int = 0, world: int = 1,
             progress: bool = True, force: bool = False) -> Report:
    """Run this rank's share of `jobs` (job i belongs to rank i % world), skipping finished ones. A job whose
    output another job made (an edited line, another model) fails with a message, or is made again with force."""
    out.mkdir(parents=True, exist_ok=True)
    mine = jobs[rank::world]  # by position in the file: the split never depends on what is finished
    report = Report()
    bar = tqdm(mine, desc=f"generate rank {rank}/{world}" if world > 1 else "generate", unit="job",
               position=rank if world > 1 else None, disable=not progress, file=sys.stderr)
    for job in bar:
        differs = finished_by_another_job(out, job, model)
        if (out / f"{job.id}.meta.json").is_file() and differs is None:
            report.skipped.append(job.id)
        elif differs is not None and not force:
            message = (f"{job.where}: {out / (job.id + '.meta.json')} holds the output of a different job ({differs}); "
                       "it is kept: pass --force to make it again, or choose another --out")
            report.failed.append(message)
            tqdm.write(f"failed: {message}", file=sys.stderr)
        else:
            try:
                run_job(job, factory, model, out)
                report.done.append(job.id)
            except (JobError, ImageError, ValueError, RuntimeError, FileNotFoundError) as err:
                report.failed.append(str(err))
                tqdm.write(f"failed: {err}", file=sys.stderr)  # now, not only at the end of a long run
        bar.set_postfix(done=len(report.done), skipped=len(report.skipped), failed=len(report.failed))
    bar.close()
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", type=Path, help="job file: jsonl, one job per line (see `worldmodel generate` docs)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (reruns skip finished jobs)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"'{DEFAULT_MODEL}' (assets/wm-default), a checkpoint folder, or '{SIMULATOR}'")
    parser.add_argument("--quant", choices=QUANTS, default="fp32", help="quant method for jobs that name none")
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto (under torchrun: cuda:LOCAL_RANK)")
    parser.add_argument("--threads", type=thread_count, default=1,
                        help="CPU threads for the model; 0: torch's default (on a busy CPU one thread was 10x faster)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="ours",
                        help="how action lines line up with frames: ours (N lines -> N + 1 frames, the start first) or "
                        "gameworld (Matrix-Game's: N lines -> N frames, the first line belongs to the start frame)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true",
                        help="make again the jobs whose output in --out was made by a different job line or model")


def main(args: argparse.Namespace) -> int:
    try:
        rank, world = rank_and_world()
        jobs = read_jobs(args.jobs, args.quant, args.protocol)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"error: --out {args.out} exists and is not a folder", file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"error: cannot create the output folder {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    factory = WorldFactory(args.device, args.threads or None)
    try:
        if args.model != SIMULATOR and jobs[rank::world]:
            factory.pipeline(args.model, args.quant)  # fail here, once, rather than once per job
    except (FileNotFoundError, ImportError, ValueError, RuntimeError) as err:
        print(f"error: cannot load the model: {err}", file=sys.stderr)
        return 2
    report = run_jobs(jobs, args.out, factory, args.model, rank, world, progress=not args.no_progress, force=args.force)
    who = f"rank {rank}/{world}: " if world > 1 else ""
    failed = f"{len(report.failed)} failed (see above)" if report.failed else "0 failed"
    print(f"{who}{len(report.done)} generated, {len(report.skipped)} already done, {failed} -> {args.out}", flush=True)
    return 1 if report.failed else 0
