"""A folder of videos to score, laid out in the project's way or in GameWorld Score's.

`worldmodel eval --videos DIR` (the project's protocol, data/alignment.py): NAME.mp4 beside NAME.jsonl (our
VPT-recorder jsonl or MineRL env-action dicts), line t labelling frame t -> t + 1. When NAME is `SCENE__ACTION`
and SCENE is one of the 32 start scenes (data/scenes.py), the simulator replays the file's actions from that
scene, so fidelity and pose following are scored too. A video named `SCENE__scenario_round_trip` is scored for
scenario consistency.

`worldmodel eval --videos DIR --protocol gameworld`: the layout GameWorld Score's scorer reads, `{prefix}_{action}.mp4`
with ACTION one of the 76 Bench76 names (data/benchmark_actions.py) and no action file: the actions are the
benchmark's, line t + 1 labelling frame t -> t + 1 as Matrix-Game aligns them. When the prefix is a start scene
(`plain_0_forward.mp4`), fidelity and pose following are scored too.

Either way a video of T frames needs T action lines (so at most 65 frames under gameworld), and frames of any
other size or aspect are centre-cropped and resized to the suite's size (data/frame_fit.py). A video that cannot
be paired or read is reported as failed, with the reason, and the other videos are still scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data.alignment import check_action_lines, check_protocol, our_actions
from eval.suite import Job, Truth, simulate

SCENARIO = "scenario_round_trip"


def bench76_name(stem: str, names: list[str]) -> tuple[str, str] | None:
    """(prefix, action) for `{prefix}_{action}` with the longest matching action name ("0094_attack_camera_down" ->
    ("0094", "attack_camera_down"), not camera_down); a bare action name has prefix ""; None when none matches."""
    for name in sorted(names, key=len, reverse=True):
        if stem == name:
            return "", name
        if stem.endswith("_" + name):
            return stem[: -len(name) - 1], name
    return None


class VideoFolder:
    def __init__(self, root: Path, protocol: str = "ours", size: int = 64):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such folder of videos")
        self.root, self.protocol, self.size = root, check_protocol(protocol), size
        self.id = f"videos: {root}" + (" (gameworld layout)" if protocol == "gameworld" else "")
        self._jobs: list[Job] = []
        self._paths: dict[str, Path] = {}
        self._action_files: dict[str, str] = {}  # what the actions came from, for messages
        self._problems: dict[str, str] = {}  # job name -> why the video cannot be scored
        self._decoded: dict[str, np.ndarray] = {}
        videos = sorted(p for p in root.glob("*.mp4") if not p.name.startswith("."))
        if not videos:
            raise FileNotFoundError(f"{root}: holds no .mp4 videos")
        for video in videos:
            job = self._gameworld_job(video) if protocol == "gameworld" else self._our_job(video)
            if job.name in self._paths:  # two names that map to one job: keep both apart
                job = Job(video.stem, job.action, job.actions, job.kind)
            self._paths[job.name] = video
            self._jobs.append(job)

    def _our_job(self, video: Path) -> Job:
        from data.actions import read_actions

        scene, _, action = video.stem.partition("__")
        if not action:
            scene, action = "", video.stem
        kind = "scenario" if action == SCENARIO else "benchmark"
        actions_path = video.with_suffix(".jsonl")
        job = Job(scene, action, (), kind)
        self._action_files[job.name] = str(actions_path)
        if not actions_path.is_file():
            self._problems[job.name] = f"{video}: no action file beside it ({actions_path.name})"
            return job
        try:
            return Job(scene, action, tuple(read_actions(actions_path)), kind)
        except (ValueError, OSError) as err:
            self._problems[job.name] = str(err)
            return job

    def _gameworld_job(self, video: Path) -> Job:
        from data.benchmark_actions import benchmark_actions

        every = benchmark_actions()
        named = bench76_name(video.stem, list(every))
        if named is None:
            job = Job("", video.stem, ())
            self._problems[job.name] = (f"{video}: the name does not end in one of the 76 Bench76 action names "
                                        "({prefix}_{action}.mp4, e.g. 0000_forward.mp4 or plain_0_camera_ul.mp4)")
            return job
        prefix, action = named
        job = Job(prefix, action, tuple(our_actions(every[action], "gameworld")))
        self._action_files[job.name] = f"the Bench76 file test_{action}.jsonl"
        return job

    def jobs(self) -> list[Job]:
        return list(self._jobs)

    def frames(self, job: Job) -> np.ndarray:
        """The video, checked against its action lines and fitted to the suite's size; ValueError if it cannot be."""
        from data.clips import decode_mp4
        from data.frame_fit import fit_frames

        if job.name in self._problems:
            raise ValueError(self._problems[job.name])
        if job.name not in self._decoded:
            path = self._paths[job.name]
            frames, _ = decode_mp4(path)
            check_action_lines(path, len(frames), self._action_files[job.name], len(job.actions))
            self._decoded = {job.name: fit_frames(frames, self.size)}  # one kept: truth() then generate() reuse it
        return self._decoded[job.name]

    def truth(self, job: Job) -> Truth | None:
        """The simulator's video for a job named after a known scene, cut to the video's length."""
        from data.scenes import SCENES

        n = len(self.frames(job))  # first, so that a bad video fails here with its own message
        if job.scene not in {s.name for s in SCENES}:
            return None
        return simulate(Job(job.scene, job.action, job.actions[:n], job.kind), self.size)

    def generate(self, jobs: list[Job], truths: list[Truth | None]) -> list[np.ndarray]:
        return [self.frames(job) for job in jobs]
