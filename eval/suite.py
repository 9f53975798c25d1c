"""The benchmark suite: start scenes x benchmark actions, generated, scored and cached one video at a time.

Protocol (GameWorld Score's): 32 start scenes (8 biomes x 4, data/scenes.py) x 76 action sequences
(data/benchmark_actions.py), 65 frames each: 2,432 videos. Plus one round-trip video per scene for scenario
consistency (eval/scenario.py). `--quick` takes 8 scenes (one per biome), 8 actions and 33 frames.

Two protocols (SuiteConfig.protocol, data/alignment.py): ours labels frame t -> t + 1 with the benchmark's line t;
`gameworld` does it as Matrix-Game and GameWorld Score do: with line t + 1, scoring every frame for image quality
and aesthetic and reporting 3D consistency on DROID-SLAM's scale (eval/consistency3d.py). docs/EVAL.md lists the
differences that remain.

A source makes the videos: the simulator itself (ground truth), a world model checkpoint (batched sessions,
any quant method), a baseline (eval/baselines.py) or a folder of videos. Every video is scored as soon as
it is made and its scores are written to OUT/videos/NAME.json (and the video to NAME.mp4), atomically; a
run that is stopped and started again skips the videos already scored. OUT/run.json records what the
folder holds (source, suite settings, scorers); a run with different settings refuses to reuse the folder.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from data.actions import Action, stack
from data.alignment import check_protocol, our_actions

SCORER_VERSION = 1  # bump when a scorer changes, so old caches are not mixed with new numbers


@dataclass(frozen=True)
class SuiteConfig:
    scenes: int = 32
    actions: int = 76
    frames: int = 65
    scenario_turn_frames: int = 16  # round-trip video: this many frames out, as many back
    batch: int = 16  # videos generated together by a world model
    size: int = 64
    protocol: str = "ours"  # or "gameworld": Matrix-Game's alignment and GameWorld Score's scoring (data/alignment.py)

    def __post_init__(self) -> None:
        if not 1 <= self.scenes <= 32:
            raise ValueError(f"scenes must be in [1, 32], got {self.scenes}")
        if not 1 <= self.actions <= 76:
            raise ValueError(f"actions must be in [1, 76], got {self.actions}")
        if not 5 <= self.frames <= 65:
            raise ValueError(f"frames must be in [5, 65], got {self.frames}")
        if self.scenario_turn_frames < 1 or self.batch < 1:
            raise ValueError("scenario_turn_frames and batch must be positive")
        check_protocol(self.protocol)


FULL = SuiteConfig()
QUICK = SuiteConfig(scenes=8, actions=8, frames=33, scenario_turn_frames=8)  # round trips of 17 frames
# The quick subset's actions: one of each kind (GameWorld's groups), by name where the benchmark has it.
QUICK_ACTIONS = ("forward", "back", "left", "jump", "attack", "camera_l", "camera_up", "forward_camera_r")


@dataclass(frozen=True)
class Job:
    scene: str
    action: str
    actions: tuple[Action, ...]  # one per frame; actions[t] makes frame t + 1, the last one is unused
    kind: str = "benchmark"  # or "scenario"

    @property
    def name(self) -> str:
        return f"{self.scene}__{self.action}"

    @property
    def frames(self) -> int:
        return len(self.actions)


@dataclass
class Truth:
    frames: np.ndarray  # (T, H, W, 3) uint8, the simulator's video
    path: np.ndarray  # (T, 2) true (pitch, yaw) relative to frame 0


# ---------------------------------------------------------------- jobs


def _pick_evenly(items: list, n: int) -> list:
    if n >= len(items):
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def pick_scenes(n: int) -> list[Any]:
    """n of the 32 scenes, spread so that every biome appears once before any appears twice."""
    from data.scenes import SCENES

    by_biome: dict[str, list] = {}
    for scene in SCENES:
        by_biome.setdefault(scene.biome, []).append(scene)
    order = [group[i] for i in range(max(map(len, by_biome.values()))) for group in by_biome.values() if i < len(group)]
    return order[:n]


def pick_actions(n: int) -> dict[str, list[Action]]:
    from data.benchmark_actions import benchmark_actions

    every = benchmark_actions()
    names = list(every)
    if n >= len(names):
        return every
    chosen = [a for a in QUICK_ACTIONS if a in every][:n] if n <= len(QUICK_ACTIONS) else []
    for name in _pick_evenly(names, n):
        if len(chosen) < n and name not in chosen:
            chosen.append(name)
    for name in names:  # top up if the evenly spread picks collided with the named ones
        if len(chosen) < n and name not in chosen:
            chosen.append(name)
    return {name: every[name] for name in chosen}


def make_jobs(cfg: SuiteConfig) -> list[Job]:
    from eval.scenario import round_trip_actions

    scenes = pick_scenes(cfg.scenes)
    actions = pick_actions(cfg.actions)
    # The benchmark's lines in our alignment: under gameworld, line t + 1 makes frame t + 1 (the first is not played).
    jobs = [Job(s.name, a, tuple(our_actions(seq[: cfg.frames], cfg.protocol))) for s in scenes for a, seq in actions.items()]
    trip = tuple(round_trip_actions(cfg.scenario_turn_frames))
    jobs += [Job(s.name, "scenario_round_trip", trip, kind="scenario") for s in scenes]
    return jobs


@lru_cache(maxsize=8)
def _scene_game(name: str, size: int):  # a data.game.Game
    """One game per scene, kept: generating the world costs more than playing 65 frames in it."""
    from data.scenes import get_scene

    return get_scene(name).game(size)


def simulate(job: Job, size: int = 64) -> Truth:
    """The simulator's video for a job, and the true camera path from its poses."""
    from eval.pose import true_path_from_poses

    # The last action makes no frame of the video. rollout() starts with reset(), which undoes the
    # previous play's edits and puts the player back.
    play = _scene_game(job.scene, size).rollout(job.actions[:-1])
    poses = [{"pitch": float(pose.pitch), "yaw": float(pose.yaw)} for pose in play.poses]
    return Truth(play.frames, true_path_from_poses(poses))


# ---------------------------------------------------------------- sources


class Source(Protocol):
    id: str  # what made the videos, for run.json and the report

    def generate(self, jobs: list[Job], truths: list[Truth]) -> list[np.ndarray]: ...


class SimulatorSource:
    id = "ground-truth (the simulator)"

    def generate(self, jobs: list[Job], truths: list[Truth]) -> list[np.ndarray]:
        return [t.frames for t in truths]


class BaselineSource:
    def __init__(self, kind: str, all_actions: dict[str, tuple[Action, ...]] | None = None, size: int = 64):
        from eval.baselines import BASELINES

        if kind not in BASELINES:
            raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")
        self.kind = kind
        self.id = f"baseline: {kind}"
        self.all_actions = all_actions or {}
        self.size = size

    def generate(self, jobs: list[Job], truths: list[Truth]) -> list[np.ndarray]:
        from eval.baselines import apply, mismatched_action_name

        out = []
        for job, truth in zip(jobs, truths):
            if self.kind != "mismatched":
                out.append(apply(self.kind, truth.frames, job.name))
                continue
            if job.kind == "scenario":
                # The round trip's stand-in: the same scene turning one way only (never coming back).
                other = Job(job.scene, "turn", tuple([job.actions[0]] * job.frames))
            else:
                names = list(self.all_actions)
                other_name = mismatched_action_name(job.action, names)
                other = Job(job.scene, other_name, self.all_actions[other_name][: job.frames])
            out.append(simulate(other, self.size).frames)
        return out


class ModelSource:
    """A world model checkpoint, run as batched streaming sessions (one per video)."""

    def __init__(self, path: str | None, quant: str | None = None, device: str = "cpu", seed: int = 0):
        from worldmodel.pipeline import WorldPipeline

        self.pipe = WorldPipeline.from_pretrained(path, device=device, quant=quant)
        self.seed = seed
        where = path or "default"
        self.id = f"model: {where} ({quant or 'fp32'})"

    def generate(self, jobs: list[Job], truths: list[Truth]) -> list[np.ndarray]:
        if len({j.frames for j in jobs}) != 1:
            raise ValueError("a batch of jobs must share one length")
        session = self.pipe.new_session(seed=self.seed)
        starts = np.stack([t.frames[0] for t in truths])
        frames = [session.start(starts)]
        for t in range(jobs[0].frames - 1):
            frames.append(session.step([j.actions[t] for j in jobs]))
        video = np.stack(frames, axis=1)  # (B, T, H, W, 3)
        return list(video)


# ---------------------------------------------------------------- scoring one video


@dataclass
class Scorers:
    """What scores a video: our IDM plus any paper scorers the user plugged in ({dimension: (name, fn)})."""

    idm: Any
    paper: dict[str, tuple[str, Callable[[np.ndarray], float]]] = field(default_factory=dict)
    protocol: str = "ours"  # "gameworld": every frame for image and aesthetic, 3D consistency on DROID's scale

    def frame_stride(self, ours: int) -> int:
        """Score every `ours`-th frame (our protocol's saving) or, under gameworld, every frame as GameWorld does."""
        return 1 if self.protocol == "gameworld" else ours

    def names(self) -> dict[str, str]:
        from eval import aesthetic, consistency3d, controllability, fidelity, image_quality, pose, scenario, smoothness, temporal

        every = "every frame" if self.protocol == "gameworld" else None
        ours = {
            "image_quality": f"{image_quality.SCORER_NAME}; {every or 'every 8th frame'}",
            "aesthetic": f"{aesthetic.SCORER_NAME}; {every or 'every 4th frame'}",
            "temporal": temporal.SCORER_NAME,
            "smoothness": smoothness.SCORER_NAME,
            "controllability": controllability.SCORER_NAME,
            "consistency_3d": consistency3d.DROID_SCALE_NAME if self.protocol == "gameworld" else consistency3d.SCORER_NAME,
            "scenario": scenario.SCORER_NAME,
            "fidelity": fidelity.SCORER_NAME,
            "pose_following": pose.SCORER_NAME,
        }
        ours.update({dim: f"{name}; {every or 'every 8th frame'}" for dim, (name, _) in self.paper.items()})
        return ours


def _frame_score(scorers: Scorers, dim: str, frames: np.ndarray, ours: Callable[..., float], stride: int) -> float:
    """Mean per-frame score over every `stride`-th frame (every frame under gameworld), ours or a paper scorer's."""
    stride = scorers.frame_stride(stride)
    if dim in scorers.paper:
        fn = scorers.paper[dim][1]
        return float(np.mean([fn(f) for f in frames[:: scorers.frame_stride(8)]]))
    return ours(frames, stride=stride)


def score_video(job: Job, frames: np.ndarray, truth: Truth | None, scorers: Scorers) -> dict[str, Any]:
    """Every dimension for one video (T, H, W, 3) uint8; JSON-ready."""
    from eval import aesthetic, consistency3d, controllability, fidelity, image_quality, scenario, smoothness, temporal
    from eval.idm import model as idm

    row: dict[str, Any] = {"name": job.name, "scene": job.scene, "action": job.action, "kind": job.kind}
    row["frames"] = int(len(frames))
    if job.kind == "scenario":
        row["scenario"] = scenario.scenario_consistency(frames)
        return row
    row["image_quality"] = _frame_score(scorers, "image_quality", frames, image_quality.image_quality, 8)
    row["aesthetic"] = _frame_score(scorers, "aesthetic", frames, aesthetic.aesthetic_quality, 4)
    row["temporal"] = temporal.consistency_from_features(idm.embed_frames(scorers.idm, frames))
    row["smoothness"] = smoothness.motion_smoothness(frames)
    if scorers.protocol == "gameworld":
        row["consistency_3d"], row["reprojection_error"] = consistency3d.consistency_3d_droid_scale(frames)
    else:
        row["consistency_3d"] = consistency3d.consistency_3d(frames)
    keys, camera = stack(list(job.actions))
    labels = controllability.video_labels(keys, camera, len(frames))
    pred = idm.predict(scorers.idm, frames)
    # Counts, not accuracies: GameWorld pools every transition of every video per task before dividing.
    row["keyboard_counts"] = {
        task: [
            int(np.sum(controllability.task_labels(pred, task) == controllability.task_labels(labels, task))),
            int(len(pred.fb)),
        ]
        for task in controllability.KEYBOARD_TASKS
    }
    row["mouse"] = float(
        np.mean(
            controllability.camera_bucket(pred.pitch, pred.yaw)
            == controllability.camera_bucket(labels["pitch"], labels["yaw"])
        )
    )
    if truth is not None:
        curves = fidelity.fidelity_curves(frames, truth.frames)
        row["psnr_curve"], row["ssim_curve"] = curves["psnr"], curves["ssim"]
        row.update(pose_fields(frames, truth.path))
    return row


def pose_fields(frames: np.ndarray, true_path: np.ndarray) -> dict[str, Any]:
    """A video's pose-following figures, and the per-frame turns read from it (NaN: unknown), kept so that a
    change of the score's form can be re-scored without reading the frames again."""
    from eval import pose

    steps = pose.recovered_steps(frames)
    score, err = pose.score_steps(steps, true_path)
    return {"pose_score": score, "pose_error_deg": err, "pose_steps": _finite(steps.round(4).tolist())}


# ---------------------------------------------------------------- the run


class FolderInUse(RuntimeError):
    """OUT already holds results made with other settings (or files that are not ours)."""


def write_json(path: Path, values: Any) -> None:
    from data.files import write_text_atomic

    write_text_atomic(path, json.dumps(values, indent=1, allow_nan=False) + "\n")


def prepare_folder(out: Path, run_info: dict[str, Any], force: bool) -> None:
    """Create OUT or check that it holds this same run; never overwrite someone's results silently."""
    out.mkdir(parents=True, exist_ok=True)
    run_path = out / "run.json"
    ours = ("run.json", "videos", "report.json", "report.md", "report.html")
    if run_path.exists():
        previous = json.loads(run_path.read_text())
        if previous != run_info and not force:
            changed = sorted(k for k in set(previous) | set(run_info) if previous.get(k) != run_info.get(k))
            raise FolderInUse(
                f"{out}: holds results of another run (differs in {', '.join(changed)}); "
                "use another --out, or --force to discard them"
            )
        if previous != run_info:
            import shutil

            shutil.rmtree(out / "videos", ignore_errors=True)
    else:
        foreign = [p.name for p in out.iterdir() if p.name in ours]
        if foreign and not force:
            raise FolderInUse(f"{out}: already holds {', '.join(foreign)} without a run.json; use another --out or --force")
    (out / "videos").mkdir(exist_ok=True)
    write_json(run_path, run_info)


def plan_batches(jobs: list[Job], batch: int) -> list[list[Job]]:
    """Every batch of the suite: jobs of one length, `batch` at a time, in the suite's order. Cut from the whole
    list, never from what is left to do, so a video's batch-mates (and with them a world model's sampling noise,
    drawn per batch from one seeded generator) are the same in a resumed run and under any number of ranks."""
    by_length: dict[int, list[Job]] = {}
    for job in jobs:
        by_length.setdefault(job.frames, []).append(job)
    return [group[i : i + batch] for group in by_length.values() for i in range(0, len(group), batch)]


def run_suite(
    source: Source,
    jobs: list[Job],
    out: Path,
    scorers: Scorers,
    cfg: SuiteConfig,
    truths: Callable[[Job], Truth | None] | None = None,
    progress: bool = True,
    batches: list[list[Job]] | None = None,  # sharding hook (eval/shard.py): this rank's batches
    rank: int = 0,
    world: int = 1,
) -> list[dict[str, Any]]:
    """Generate and score every job of `batches` (default: every batch of `jobs`) not yet cached under OUT/videos;
    return their rows in order. A batch with some videos cached is generated whole; only the missing are scored.

    A video that cannot be made, read or scored (a bad file: ValueError or OSError) gets a row of kind "failed"
    with the reason, printed as it happens; the other videos carry on. The row is kept as NAME.failed.json (so
    that a report assembled from the folder lists it) but does not count as done: a rerun tries it again."""
    from tqdm import tqdm

    from data.video import write_mp4

    truth_of = truths or (lambda job: simulate(job, cfg.size))
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    batches = plan_batches(jobs, cfg.batch) if batches is None else batches
    mine = [job for batch in batches for job in batch]
    todo = {j.name for j in mine if not (videos / f"{j.name}.json").exists()}
    bar = tqdm(
        total=len(mine), initial=len(mine) - len(todo), desc=f"eval{f' rank {rank}/{world}' if world > 1 else ''} {source.id}",
        unit="video", disable=not progress, position=rank if world > 1 else None,
        mininterval=0.1 if sys.stderr.isatty() else 30.0,  # the ETA; to a log, a line every 30 s
    )  # fmt: skip
    failed: dict[str, str] = {}

    def fail(job: Job, err: Exception) -> None:
        failed[job.name] = str(err)
        write_json(videos / f"{job.name}.failed.json", failed_row(job, str(err)))
        tqdm.write(f"failed: {err}", file=sys.stderr)
        bar.update(1)

    for batch in batches:
        if not any(job.name in todo for job in batch):
            continue
        for job, frames, truth in _make_videos(source, batch, truth_of, fail):
            if job.name not in todo or job.name in failed:
                continue
            try:
                row = score_video(job, np.asarray(frames, np.uint8), truth, scorers)
            except ValueError as err:  # e.g. a video too short to score
                fail(job, ValueError(f"{job.name}: {err}"))
                continue
            write_mp4(videos / f"{job.name}.mp4", np.asarray(frames, np.uint8))
            write_json(videos / f"{job.name}.json", _finite(row))
            (videos / f"{job.name}.failed.json").unlink(missing_ok=True)
            bar.update(1)
    bar.close()
    return [
        failed_row(j, failed[j.name]) if j.name in failed else json.loads((videos / f"{j.name}.json").read_text())
        for j in mine
    ]


def failed_row(job: Job, error: str) -> dict[str, Any]:
    return {"name": job.name, "scene": job.scene, "action": job.action, "kind": "failed", "error": error}


def _make_videos(
    source: Source, batch: list[Job], truth_of: Callable[[Job], Truth | None], fail: Callable[[Job, Exception], None]
) -> list[tuple[Job, np.ndarray, Truth | None]]:
    """(job, frames, truth) for the jobs of a batch; when the batch fails on a bad file, job by job, and each
    job that still fails goes to `fail`."""
    try:
        truths = [truth_of(j) for j in batch]
        return list(zip(batch, source.generate(batch, truths), truths))
    except (ValueError, OSError) as err:
        if len(batch) == 1:
            fail(batch[0], err)
            return []
    return [made for job in batch for made in _make_videos(source, [job], truth_of, fail)]


def _finite(value: Any) -> Any:
    """NaN -> None, so the cache stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def run_info(source: Source, cfg: SuiteConfig, scorers: Scorers, idm_path: str) -> dict[str, Any]:
    """What a results folder holds; a run whose info differs may not reuse the folder's cached videos."""
    import hashlib

    weights = Path(idm_path) / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.is_file() else None
    return {
        "source": source.id,
        "suite": asdict(cfg),
        "scorers": scorers.names(),
        "scorer_version": SCORER_VERSION,
        "idm": idm_path,
        "idm_sha256": digest,  # a retrained IDM changes keyboard, mouse and temporal numbers
    }
