"""A folder of videos to score: NAME.mp4 beside NAME.jsonl (our VPT-recorder jsonl or MineRL env-action dicts).

`worldmodel eval --videos DIR` scores such a folder. When NAME is `SCENE__ACTION` and SCENE is one of the 32
start scenes (data/scenes.py), the simulator replays the file's actions from that scene, so fidelity and pose
following are scored too; otherwise only the GameWorld dimensions are. A video named `SCENE__scenario_round_trip`
is scored for scenario consistency. The action file needs at least one line per frame but the last.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data.actions import read_actions
from eval.suite import Job, Truth, simulate


class VideoFolder:
    def __init__(self, root: Path):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such folder of videos")
        self.root = root
        self.id = f"videos: {root}"
        self._jobs: list[Job] = []
        for video in sorted(root.glob("*.mp4")):
            actions_path = video.with_suffix(".jsonl")
            if not actions_path.is_file():
                raise FileNotFoundError(f"{video}: no action file beside it ({actions_path.name})")
            scene, _, action = video.stem.partition("__")
            if not action:
                scene, action = "", video.stem
            kind = "scenario" if action == "scenario_round_trip" else "benchmark"
            self._jobs.append(Job(scene, action, tuple(read_actions(actions_path)), kind))
        if not self._jobs:
            raise FileNotFoundError(f"{root}: holds no NAME.mp4 + NAME.jsonl pairs")

    def jobs(self) -> list[Job]:
        return list(self._jobs)

    def _path(self, job: Job) -> Path:
        return self.root / (f"{job.scene}__{job.action}.mp4" if job.scene else f"{job.action}.mp4")

    def frames(self, job: Job) -> np.ndarray:
        from data.clips import decode_mp4

        frames, _ = decode_mp4(self._path(job))
        if len(job.actions) < len(frames) - 1:
            raise ValueError(f"{self._path(job)}: {len(frames)} frames but only {len(job.actions)} actions")
        return frames

    def truth(self, job: Job) -> Truth | None:
        """The simulator's video for a job named after a known scene, cut to the video's length."""
        from data.scenes import SCENES

        if job.scene not in {s.name for s in SCENES}:
            return None
        n = len(self.frames(job))
        replay = Job(job.scene, job.action, job.actions[:n], job.kind)
        size = self.frames(job).shape[1]
        return simulate(replay, size)

    def generate(self, jobs: list[Job], truths: list[Truth | None]) -> list[np.ndarray]:
        return [self.frames(job) for job in jobs]
