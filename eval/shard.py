"""The suite split over torchrun ranks (processes, or machines sharing a folder), and the report assembled once all are in.

    torchrun --standalone --nproc-per-node 4 -m app.cli eval --model default --out OUT --threads 1
    torchrun --nnodes 2 --node-rank R --rdzv-backend c10d --rdzv-endpoint HOST:29400 --nproc-per-node 16 \\
        -m app.cli eval --model default --out SHARED_OUT --threads 1

How the work is split: the suite's videos are cut into batches (eval.suite.plan_batches: videos of one length,
`--batch` at a time, in the suite's order) from the whole list of videos, whatever is already done and however
many ranks there are, and batch i goes to rank i % WORLD_SIZE. So a video always has the same batch-mates, and
a world model, which draws a batch's sampling noise from one seeded generator, makes the same video whether one
process or sixteen run the suite, and whether the run was stopped and resumed (a batch with some videos missing
is generated whole again; only the missing ones are scored and written). No collective operation is needed, as
in `worldmodel generate`: the ranks meet in the folder.

The folder: rank 0 checks it (eval.suite.prepare_folder) and writes OUT/jobs.json (every video's name, in the
suite's order) and OUT/run.json; the other ranks wait until both describe their own run. Each rank writes its
videos' results atomically (OUT/videos/NAME.json, via data/files.py). A rank that has finished its share looks
whether every video in jobs.json is in (scored, or failed on a bad file); the last one to finish finds them all
and writes the report (two that finish at the same moment write the same bytes, each atomically). The report is
made from the cached rows alone, read in jobs.json's order, so it is byte for byte the same whatever the number
of ranks. `worldmodel eval --assemble OUT` writes it by hand, e.g. after a lost machine's share was rerun elsewhere.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from eval.suite import Job, SuiteConfig, Truth, make_jobs, plan_batches, prepare_folder, simulate
from worldmodel.distributed import rank_and_world

JOBS_FILE = "jobs.json"
WAIT_FOR_RANK_0_S = 900.0  # rank 0 may still be loading a model (or compiling quant kernels) when the others are ready


def rank_device(device: str) -> str:
    """`cuda` names this process's own GPU under torchrun (cuda:LOCAL_RANK), as `worldmodel generate` does."""
    if device == "cuda" and rank_and_world()[1] > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return device


def my_batches(jobs: list[Job], batch: int, rank: int, world: int) -> list[list[Job]]:
    """This rank's batches: batch i of the whole suite goes to rank i % world."""
    return plan_batches(jobs, batch)[rank::world]


def is_done(out: Path, name: str) -> bool:
    """Scored (NAME.json), or tried and failed on a bad file (NAME.failed.json: the report lists it, a rerun retries it)."""
    return (out / "videos" / f"{name}.json").is_file() or (out / "videos" / f"{name}.failed.json").is_file()


def read_row(out: Path, name: str) -> dict[str, Any]:
    scored = out / "videos" / f"{name}.json"
    return json.loads((scored if scored.is_file() else out / "videos" / f"{name}.failed.json").read_text())


def missing(out: Path, names: list[str]) -> list[str]:
    return [name for name in names if not is_done(out, name)]


# ---------------------------------------------------------------- the shared folder


def write_names(out: Path, jobs: list[Job]) -> None:
    from data.files import write_text_atomic

    write_text_atomic(out / JOBS_FILE, json.dumps([job.name for job in jobs], indent=0) + "\n")


def read_names(out: Path) -> list[str]:
    path = out / JOBS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; is {out} a `worldmodel eval --out` folder?")
    try:
        names = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: not JSON ({err})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: must be a JSON list of video names")
    return names


def prepare(out: Path, info: dict[str, Any], jobs: list[Job], force: bool, rank: int, wait_s: float = WAIT_FOR_RANK_0_S) -> None:
    """Rank 0 checks and claims the folder for this run; the others wait until it has (never touching it)."""
    if rank == 0:
        prepare_folder(out, info, force)
        write_names(out, jobs)
        return
    names = [job.name for job in jobs]
    deadline = time.monotonic() + wait_s
    while True:
        try:
            ready = json.loads((out / "run.json").read_text()) == info and read_names(out) == names
        except (OSError, ValueError):  # not written yet
            ready = False
        if ready:
            return
        if time.monotonic() > deadline:
            raise ValueError(f"rank {rank}: after {wait_s:.0f} s, {out} still does not hold this run's run.json and "
                             f"{JOBS_FILE} (did rank 0 stop with an error?)")
        time.sleep(0.5)


# ---------------------------------------------------------------- the report


def suite_jobs(info: dict[str, Any]) -> list[Job]:
    """The jobs of a run made from the suite (not a folder of videos), rebuilt from run.json."""
    if str(info.get("source", "")).startswith("videos:"):
        return []
    return make_jobs(SuiteConfig(**info["suite"]))


def assemble(out: Path, jobs: list[Job] | None = None, truth_of: Callable[[Job], Truth | None] | None = None) -> dict[str, Any]:
    """Write OUT/report.json, .md and .html from the cached rows of every video in jobs.json; return the summary.

    `jobs` and `truth_of` give the thumbnails their true videos; without them the suite's jobs are rebuilt
    from run.json (a folder of videos then gets thumbnails without the true video)."""
    from eval.report import write_report

    info = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else None
    if info is None:
        raise FileNotFoundError(f"{out / 'run.json'}: missing; is {out} a `worldmodel eval --out` folder?")
    names = read_names(out)
    gone = missing(out, names)
    if gone:
        raise ValueError(f"{out}: {len(gone)} of {len(names)} videos are not scored yet (the first: {gone[0]}); "
                         "run the same `worldmodel eval` command again to score them")
    rows = [read_row(out, name) for name in names]
    known = {job.name: job for job in (jobs if jobs is not None else suite_jobs(info))}
    truth_of = truth_of or (lambda job: simulate(job, info["suite"]["size"]))
    return write_report(out, rows, info, thumbnails(out, rows, known, truth_of))


def thumbnails(out: Path, rows: list[dict[str, Any]], jobs: dict[str, Job], truth_of: Callable[[Job], Truth | None],
               count: int = 6) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(name, generated frames, true frames or None) for a few benchmark videos spread over the run."""
    from data.clips import decode_mp4

    bench = [r["name"] for r in rows if r["kind"] == "benchmark"]
    picked = [bench[i] for i in np.linspace(0, len(bench) - 1, min(count, len(bench))).round().astype(int)] if bench else []
    out_thumbs = []
    for name in picked:
        frames, _ = decode_mp4(out / "videos" / f"{name}.mp4")
        truth = truth_of(jobs[name]) if name in jobs else None
        out_thumbs.append((name, frames, truth.frames if truth is not None else None))
    return out_thumbs
