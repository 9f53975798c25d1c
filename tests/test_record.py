"""Recording clips: files, time alignment, resume after a kill, refusal of a mismatched folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from data.actions import KEYS, Action
from data.record import (
    CLIP_FORMAT,
    MANIFEST_NAME,
    RecordConfig,
    RecordRefused,
    clip_seeds,
    plan_clips,
    record,
)

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class FakePose:
    x: float
    y: float
    z: float
    yaw: float
    pitch: float


class FakeGame:
    """Noise frames from a seed; frame t + 1 depends on the action, so alignment is checkable."""

    def __init__(self, seed: int, biome: str, size: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.size, self.t = size, 0
        self.pose = FakePose(0.5, 10.0, 0.5, 0.0, 0.0)

    def reset(self) -> np.ndarray:
        self.t = 0
        return self.rng.integers(0, 256, (self.size, self.size, 3), dtype=np.uint8)

    def step(self, act: Action) -> np.ndarray:
        self.t += 1
        p = self.pose
        self.pose = FakePose(p.x + 0.25, p.y, p.z - 0.5, p.yaw + act.camera[1], p.pitch + act.camera[0])
        frame = self.rng.integers(0, 256, (self.size, self.size, 3), dtype=np.uint8)
        frame[0, 0, 0] = len(act.keys)  # the action leaves a trace in the frame it produces
        return frame


class FakePlayer:
    """Random keys and camera moves of whole VPT mouse counts (0.15 degrees), from a seed."""

    def __init__(self, name: str, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, game: FakeGame) -> Action:
        keys = frozenset(k for k in KEYS if self.rng.random() < 0.3)
        pitch, yaw = (self.rng.integers(-20, 21, 2) * 0.15).tolist()
        return Action(keys, (pitch, yaw))


def fake_record(cfg: RecordConfig, out: Path, **kwargs):
    return record(cfg, out, progress=False, game_factory=FakeGame, player_factory=FakePlayer, **kwargs)


def expected_frames(seed: int, player_seed: int, size: int, frames: int) -> np.ndarray:
    game, player = FakeGame(seed, "plain", size), FakePlayer("fake", player_seed)
    shown = [game.reset()]
    for _ in range(frames - 1):
        shown.append(game.step(player.act(game)))
    return np.stack(shown)


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir())}


CFG = RecordConfig(frames=30, clip_frames=12, size=16, seed=3, player="fake", biomes=("plain", "icy"))


def test_plan_splits_frames_and_cycles_biomes():
    plans = plan_clips(RecordConfig(frames=1001, clip_frames=500, biomes=("beach", "desert")))
    assert [p.frames for p in plans] == [500, 500, 1]
    assert [p.biome for p in plans] == ["beach", "desert", "beach"]
    assert len({p.seed for p in plans}) == 3
    assert plans[1].seed == clip_seeds(0, 1)[0] and plans[1].name == "clip_000001"


@pytest.mark.parametrize("bad", [dict(frames=0), dict(clip_frames=0), dict(size=15), dict(size=8),
                                 dict(seed=-1), dict(biomes=()), dict(biomes=("lava",)), dict(player="")])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        RecordConfig(**{"frames": 10, **bad})


def test_record_writes_complete_clips(tmp_path):
    report = fake_record(CFG, tmp_path, workers=1)
    assert (report.planned, report.recorded, report.frames) == (3, 3, 30)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if n.startswith(".")], "temp files left behind"
    assert MANIFEST_NAME in names
    for plan in plan_clips(CFG):
        stem = tmp_path / plan.name
        frames = np.load(f"{stem}.frames.npy", mmap_mode="r")
        assert frames.dtype == np.uint8 and frames.shape == (plan.frames, 16, 16, 3)
        assert np.array_equal(frames, expected_frames(plan.seed, plan.player_seed, 16, plan.frames))
        meta = json.loads(Path(f"{stem}.meta.json").read_text())
        assert meta["format"] == CLIP_FORMAT and meta["frames"] == plan.frames
        assert (meta["seed"], meta["biome"], meta["width"], meta["height"], meta["fps"]) == (
            plan.seed, plan.biome, 16, 16, 20)
        assert meta["player"] == {"name": "fake", "seed": plan.player_seed}
        assert {"python", "numpy", "torch", "worldmodel"} <= set(meta["versions"])
        assert len(Path(f"{stem}.jsonl").read_text().splitlines()) == plan.frames
        with av.open(f"{stem}.mp4") as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and stream.average_rate == 20
            decoded = [f for f in container.decode(stream)]
        assert len(decoded) == plan.frames and decoded[0].format.name == "yuv420p"


def test_a_recording_without_videos_reads_and_trains_from_its_frames(tmp_path):
    from dataclasses import replace

    from data.clips import ClipWindows, read_clip

    fake_record(replace(CFG, video=False), tmp_path, workers=1)
    assert not list(tmp_path.glob("*.mp4"))
    first = plan_clips(CFG)[0]
    clip = read_clip(tmp_path / first.name)
    assert np.array_equal(clip.frames, expected_frames(first.seed, first.player_seed, 16, first.frames))
    assert len(ClipWindows(tmp_path, 5)) == sum(p.frames // 5 for p in plan_clips(CFG))


def test_actions_and_poses_round_trip(tmp_path):
    from data.clips import read_clip

    fake_record(CFG, tmp_path, workers=1)
    plan = plan_clips(CFG)[0]
    game, player = FakeGame(plan.seed, plan.biome, 16), FakePlayer("fake", plan.player_seed)
    game.reset()
    actions, poses = [], []
    for _ in range(plan.frames):
        poses.append(game.pose)
        actions.append(player.act(game))
        game.step(actions[-1])
    clip = read_clip(tmp_path / plan.name)
    assert [a.keys for a in clip.actions] == [a.keys for a in actions]
    np.testing.assert_allclose([a.camera for a in clip.actions], [a.camera for a in actions], atol=1e-6)
    assert clip.poses is not None
    np.testing.assert_allclose([[p["x"], p["y"], p["z"], p["yaw"], p["pitch"]] for p in clip.poses],
                               [[p.x, p.y, p.z, p.yaw, p.pitch] for p in poses], atol=1e-4)
    # Alignment: actions[t] made frames[t + 1] (the fake marks the key count in pixel 0).
    assert [int(clip.frames[t + 1][0, 0, 0]) for t in range(5)] == [len(a.keys) for a in actions[:5]]


def test_two_workers_match_one(tmp_path):
    fake_record(CFG, tmp_path / "one", workers=1)
    report = fake_record(CFG, tmp_path / "two", workers=2)
    assert report.recorded == 3
    for plan in plan_clips(CFG):
        a = np.load(tmp_path / "one" / f"{plan.name}.frames.npy")
        b = np.load(tmp_path / "two" / f"{plan.name}.frames.npy")
        assert np.array_equal(a, b)


def test_resume_redoes_only_incomplete_clips(tmp_path):
    fake_record(CFG, tmp_path, workers=1)
    # Simulate a kill while clip 1 was being written: no meta.json, a half-written frames file, a temp file.
    (tmp_path / "clip_000001.meta.json").unlink()
    (tmp_path / "clip_000001.frames.npy").write_bytes(b"\x93NUMPY half")
    (tmp_path / ".clip_000001.mp4.tmp").write_bytes(b"partial")
    before = mtimes(tmp_path)
    report = fake_record(CFG, tmp_path, workers=1)
    assert (report.skipped, report.recorded, report.frames) == (2, 1, 12)
    after = mtimes(tmp_path)
    for name in before:
        if name.startswith(("clip_000000", "clip_000002")):
            assert after[name] == before[name], f"complete clip file {name} was rewritten"
    plan = plan_clips(CFG)[1]
    assert np.array_equal(np.load(tmp_path / "clip_000001.frames.npy"),
                          expected_frames(plan.seed, plan.player_seed, 16, plan.frames))
    assert (tmp_path / "clip_000001.meta.json").is_file()
    assert not (tmp_path / ".clip_000001.mp4.tmp").exists()


def test_rerun_with_more_frames_extends(tmp_path):
    fake_record(RecordConfig(**{**vars(CFG), "frames": 24}), tmp_path, workers=1)
    before = mtimes(tmp_path)
    report = fake_record(RecordConfig(**{**vars(CFG), "frames": 36}), tmp_path, workers=1)
    assert (report.skipped, report.recorded) == (2, 1)
    after = mtimes(tmp_path)
    assert all(after[name] == before[name] for name in before if name != MANIFEST_NAME)


def test_rerun_that_would_change_a_complete_clip_is_refused(tmp_path):
    fake_record(CFG, tmp_path, workers=1)  # clip_000002 holds the 6 leftover frames
    with pytest.raises(RecordRefused, match="clip_000002.meta.json"):
        fake_record(RecordConfig(**{**vars(CFG), "frames": 36}), tmp_path, workers=1)


def test_folder_with_other_settings_is_refused(tmp_path):
    fake_record(CFG, tmp_path, workers=1)
    before = mtimes(tmp_path)
    for change in (dict(size=32), dict(seed=4), dict(clip_frames=10), dict(biomes=("plain",)), dict(player="x")):
        with pytest.raises(RecordRefused, match=str(tmp_path)):
            fake_record(RecordConfig(**{**vars(CFG), **change}), tmp_path, workers=1)
    assert mtimes(tmp_path) == before
    # --force adds to the folder but keeps every complete clip as it was.
    report = fake_record(RecordConfig(**{**vars(CFG), "size": 32, "frames": 40}), tmp_path, workers=1, force=True)
    assert report.warnings and report.skipped == 3 and report.recorded == 1
    after = mtimes(tmp_path)
    assert all(after[name] == before[name] for name in before if name != MANIFEST_NAME)


def test_folder_with_clips_but_no_manifest_is_refused(tmp_path):
    (tmp_path / "someone_elses.mp4").write_bytes(b"")
    with pytest.raises(RecordRefused, match="someone_elses.mp4"):
        fake_record(CFG, tmp_path, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["someone_elses.mp4"]


def test_cli_records_with_the_real_game(tmp_path):
    from app.cli import main
    from data.clips import read_clip

    out = tmp_path / "clips"
    assert main(["record", "--out", str(out), "--frames", "24", "--clip-frames", "12", "--size", "32",
                 "--workers", "1", "--no-progress"]) == 0
    clip = read_clip(out / "clip_000001")
    assert clip.frames.shape == (12, 32, 32, 3) and len(clip.actions) == 12
    assert clip.meta["biome"] == "desert" and clip.poses is not None
    line = json.loads((out / "clip_000001.jsonl").read_text().splitlines()[0])
    assert {"camera", "keys", "pose", "broken", "placed", "swing_started"} <= set(line["wm"])
    assert main(["record", "--out", str(out), "--frames", "24", "--size", "48", "--no-progress"]) == 2


@pytest.mark.slow
def test_record_10000_frames_reads_back(tmp_path):
    from data.clips import ClipWindows, find_clips, read_clip

    cfg = RecordConfig(frames=10_000, clip_frames=500, size=64)
    report = record(cfg, tmp_path, workers=2, progress=False)
    assert report.frames == 10_000
    stems = find_clips(tmp_path)
    assert len(stems) == 20
    assert sum(len(read_clip(stem)) for stem in stems) == 10_000
    windows = ClipWindows(tmp_path, length=16)
    assert len(windows) == 20 * (500 // 16)
    assert windows[len(windows) - 1]["obs"].shape == (16, 3, 64, 64)


# --- worker processes die with their parent ----------------------------------------------

HANGING_RECORDER = """
import os, sys, time
from pathlib import Path
from data.record import RecordConfig, record

out = Path(sys.argv[1])

def hanging_game(seed, biome, size):  # a worker that would record for a long time
    (out.parent / f"worker-{os.getpid()}").write_text("")
    time.sleep(120)

record(RecordConfig(frames=4, clip_frames=1, size=16), out, workers=2, progress=False, game_factory=hanging_game)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_a_killed_parent(tmp_path, sig):
    parent = subprocess.Popen([sys.executable, "-c", HANGING_RECORDER, str(tmp_path / "clips")], cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("worker-*"))) < 2:
            assert time.monotonic() < deadline and parent.poll() is None, "the workers never started"
            time.sleep(0.05)
        workers = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
        parent.send_signal(sig)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in workers), "workers outlived their parent"
    finally:
        parent.kill()
        parent.wait()
        for pid in [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]:
            if _alive(pid):  # only when the test failed: leave no process behind
                os.kill(pid, signal.SIGKILL)
