"""Re-score pose following in finished `worldmodel eval` folders, from the videos they hold.

    python -m eval.rescore runs/eval/full/gt runs/eval/full/frozen ... [--jobs 2]

Pose following changed form (eval/pose.py: paths compared over 16-frame windows instead of over the whole
video, whose error grew with the length). Every other dimension is unchanged, so a folder need not be made
again: each video's row gets the new score, error and per-frame turns (written atomically), run.json names the
new scorer, and the report is assembled again once every video is in. Resumable: a row that already holds the
per-frame turns is done (an interrupted run picks up where it stopped; rows made by the current code are
skipped). The frames are read back from the stored mp4 (H.264, CRF 18), not the frames first scored, so a
re-scored figure can differ from a fresh run's in the second decimal. Cost: the flow of each frame pair and the
simulator's poses, under half a second per 65-frame video on one core.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

from tqdm import tqdm


@lru_cache(maxsize=4)
def _folder_jobs(folder: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A folder's run.json and its suite's jobs by name, read once per worker (not once per video)."""
    from eval.shard import suite_jobs

    info = json.loads((Path(folder) / "run.json").read_text())
    return info, {j.name: j for j in suite_jobs(info)}


def _rescore(folder: str, name: str) -> str:
    """In a worker: re-score one video's row in place."""
    from data.clips import decode_mp4
    from eval.suite import pose_fields, simulate, write_json

    info, jobs = _folder_jobs(folder)
    videos = Path(folder) / "videos"
    row = json.loads((videos / f"{name}.json").read_text())
    frames, _ = decode_mp4(videos / f"{name}.mp4")
    row.update(pose_fields(frames, simulate(jobs[name], info["suite"]["size"]).path))
    write_json(videos / f"{name}.json", row)
    return name


def to_do(out: Path) -> list[str]:
    """The videos of OUT whose pose figures are of the old form (scored rows with a true path, no turns kept)."""
    rows = sorted((out / "videos").glob("*.json"))
    names = []
    for path in rows:
        if path.name.endswith(".failed.json"):
            continue
        row = json.loads(path.read_text())
        if "pose_score" in row and "pose_steps" not in row:
            names.append(row["name"])
    return names


def rescore(out: Path, jobs: int = 1) -> int:
    """Re-score OUT; returns how many rows changed."""
    from eval import pose
    from eval.shard import assemble, missing, read_names
    from eval.suite import write_json

    run_path = out / "run.json"
    if not run_path.is_file():
        raise FileNotFoundError(f"{run_path}: missing; is {out} a `worldmodel eval --out` folder?")
    names = to_do(out)
    # Scene by scene, so that each worker builds a scene's world once (simulate keeps the last few).
    names.sort(key=lambda n: n.split("__")[0])
    if names:
        with ProcessPoolExecutor(jobs) as pool:
            done = pool.map(_rescore, [str(out)] * len(names), names, chunksize=8)
            for _ in tqdm(done, total=len(names), desc=f"rescore {out}", unit="video"):
                pass
    info = json.loads(run_path.read_text())
    if info["scorers"].get("pose_following") != pose.SCORER_NAME:
        info["scorers"]["pose_following"] = pose.SCORER_NAME
        write_json(run_path, info)
    if not missing(out, read_names(out)):
        assemble(out)
    return len(names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.rescore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="`worldmodel eval --out` folders")
    parser.add_argument("--jobs", type=int, default=1, help="processes (one core each)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    for out in args.folders:
        try:
            changed = rescore(out, args.jobs)
        except (OSError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        scorer = json.loads((out / "run.json").read_text())["scorers"]["pose_following"]
        print(f"{out}: {changed} rows re-scored; pose following: {scorer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
