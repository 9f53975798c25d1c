"""Reading clips back: ours and mp4 + VPT jsonl pairs, every bad input named, and ClipWindows."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from data.actions import KEYS, Action, to_vpt_line
from data.clips import Clip, ClipError, ClipWindows, clip_stem, find_clips, read_clip
from data.record import RecordConfig, plan_clips, record
from data.video import write_mp4

torch.set_num_threads(1)


class FakeGame:
    """Smooth moving-gradient frames (so H.264 keeps them close) from a seed."""

    def __init__(self, seed: int, biome: str, size: int) -> None:
        self.size, self.t, self.offset = size, 0, seed % 97

    def frame(self) -> np.ndarray:
        ramp = np.arange(self.size, dtype=np.int64) * 4 + self.t * 3 + self.offset
        image = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], np.full((1, 1), 128)), -1)
        return (image % 256).astype(np.uint8)

    def reset(self) -> np.ndarray:
        self.t = 0
        return self.frame()

    def step(self, act: Action) -> np.ndarray:
        self.t += 1
        return self.frame()


class FakePlayer:
    def __init__(self, name: str, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, game: FakeGame) -> Action:
        keys = frozenset(k for k in KEYS if self.rng.random() < 0.3)
        return Action(keys, tuple((self.rng.integers(-20, 21, 2) * 0.15).tolist()))


def make_clips(out: Path, frames: int = 30, clip_frames: int = 12, size: int = 16, seed: int = 0) -> list[Path]:
    cfg = RecordConfig(frames=frames, clip_frames=clip_frames, size=size, seed=seed, player="fake")
    record(cfg, out, workers=1, progress=False, game_factory=FakeGame, player_factory=FakePlayer)
    return [out / plan.name for plan in plan_clips(cfg)]


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clips")
    make_clips(out)
    return out


def copy_clip(src: Path, dst_dir: Path, name: str = "clip") -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    for suffix in (".frames.npy", ".mp4", ".jsonl", ".meta.json"):
        (dst_dir / f"{name}{suffix}").write_bytes(Path(f"{src}{suffix}").read_bytes())
    return dst_dir / name


# --- reading good clips -----------------------------------------------------------------

def test_read_clip_from_any_file_or_stem(clips_dir):
    stem = clips_dir / "clip_000000"
    for path in (stem, f"{stem}.mp4", f"{stem}.frames.npy", f"{stem}.jsonl", f"{stem}.meta.json"):
        assert clip_stem(path) == stem
        clip = read_clip(path)
        assert isinstance(clip, Clip) and clip.stem == stem
        assert isinstance(clip.frames, np.memmap) and clip.frames.shape == (12, 16, 16, 3)
        assert len(clip.actions) == len(clip) == 12 and clip.meta["fps"] == 20
        assert clip.poses is None  # the fake game has no pose


def test_mp4_is_the_fallback_when_frames_npy_is_gone(clips_dir, tmp_path):
    stem = copy_clip(clips_dir / "clip_000000", tmp_path)
    exact = np.load(f"{stem}.frames.npy")
    Path(f"{stem}.frames.npy").unlink()
    clip = read_clip(stem)
    assert clip.frames.shape == exact.shape
    assert np.abs(clip.frames.astype(int) - exact).mean() < 6  # lossy, but the same picture


def test_find_clips_lists_complete_clips_and_warns_on_incomplete(clips_dir, tmp_path):
    assert find_clips(clips_dir) == [clips_dir / f"clip_{i:06d}" for i in range(3)]
    stem = copy_clip(clips_dir / "clip_000000", tmp_path / "nested")
    Path(f"{stem}.meta.json").unlink()
    with pytest.warns(UserWarning, match="incomplete"):
        assert find_clips(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_clips(tmp_path / "nowhere")


def test_mp4_and_vpt_jsonl_recorded_elsewhere(tmp_path):
    game, frames = FakeGame(5, "plain", 32), []
    frames = np.stack([game.reset()] + [game.step(Action()) for _ in range(9)])
    write_mp4(tmp_path / "episode.mp4", frames, fps=30)
    actions = [Action(frozenset({"forward", "jump"} if t % 2 else {"attack"}), (0.15 * t, -0.3)) for t in range(10)]
    with open(tmp_path / "episode.jsonl", "w") as f:
        for t, act in enumerate(actions):
            line = to_vpt_line(act, tick=t)
            line.update(isGuiOpen=False, hotbar=0, serverTick=1000 + t)  # other recorder fields are ignored
            f.write(json.dumps(line) + "\n")
    assert find_clips(tmp_path) == [tmp_path / "episode"]
    clip = read_clip(tmp_path / "episode.mp4")
    assert clip.frames.shape == (10, 32, 32, 3) and clip.meta["fps"] == 30
    assert [a.keys for a in clip.actions] == [a.keys for a in actions]
    np.testing.assert_allclose([a.camera for a in clip.actions], [a.camera for a in actions], atol=1e-6)
    assert np.abs(clip.frames.astype(int) - frames).mean() < 6


# --- bad input: every error names the file ----------------------------------------------

def test_pose_from_the_recorders_minecraft_fields(tmp_path):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Pose:
        x: float
        y: float
        z: float
        yaw: float
        pitch: float

    poses = [Pose(1.5, 20.0, -3.25, yaw, pitch) for yaw, pitch in [(0.0, 0.0), (90.0, 30.0), (-135.0, -89.0)]]
    write_mp4(tmp_path / "walk.mp4", np.zeros((3, 16, 16, 3), np.uint8))
    with open(tmp_path / "walk.jsonl", "w") as f:
        for pose in poses:
            line = to_vpt_line(Action(), pose=pose)
            del line["wm"]  # only Minecraft's yaw (0 = south) and pitch (+ = down) remain
            f.write(json.dumps(line) + "\n")
    clip = read_clip(tmp_path / "walk")
    assert clip.poses is not None
    np.testing.assert_allclose([[p["x"], p["y"], p["z"], p["yaw"], p["pitch"]] for p in clip.poses],
                               [[p.x, p.y, p.z, p.yaw, p.pitch] for p in poses], atol=1e-9)


def test_truncated_mp4_is_named(clips_dir, tmp_path):
    stem = copy_clip(clips_dir / "clip_000000", tmp_path)
    Path(f"{stem}.frames.npy").unlink()  # force decoding, as for a clip recorded elsewhere
    data = Path(f"{stem}.mp4").read_bytes()
    Path(f"{stem}.mp4").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ClipError, match=r"clip\.mp4"):
        read_clip(stem)


def test_corrupt_mp4_is_named(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"this is not a video" * 50)
    (tmp_path / "junk.jsonl").write_text(json.dumps(to_vpt_line(Action())) + "\n")
    with pytest.raises(ClipError, match=r"junk\.mp4"):
        read_clip(tmp_path / "junk")


@pytest.mark.parametrize("change", [-1, +1])
def test_jsonl_with_fewer_or_more_lines_than_frames(clips_dir, tmp_path, change):
    stem = copy_clip(clips_dir / "clip_000000", tmp_path)
    lines = Path(f"{stem}.jsonl").read_text().splitlines()
    lines = lines[:change] if change < 0 else lines + lines[-1:]
    Path(f"{stem}.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ClipError, match=r"clip\.jsonl: 1[13] action lines, (fewer|more) than the 12 frames"):
        read_clip(stem)


@pytest.mark.parametrize("edit", [
    lambda d: d["keyboard"]["keys"].append("key.keyboard.nonsense"),
    lambda d: d["mouse"].update(dx=float("nan")),
    lambda d: d["mouse"].update(dy=1e9),
    lambda d: d["mouse"].update(dx=1e9),
], ids=["unknown-key", "nan-mouse", "huge-dy", "huge-dx"])
def test_bad_action_line_names_file_and_line(clips_dir, tmp_path, edit):
    stem = copy_clip(clips_dir / "clip_000000", tmp_path)
    lines = Path(f"{stem}.jsonl").read_text().splitlines()
    line = json.loads(lines[6])
    edit(line)
    lines[6] = json.dumps(line)  # json writes NaN as the bare literal NaN, as a careless recorder would
    Path(f"{stem}.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ClipError, match=r"clip\.jsonl:7: "):
        read_clip(stem)


@pytest.mark.parametrize("mouse", [dict(dx=1e9), dict(dy=-5000), dict(dx=float("inf"))])
def test_bad_mouse_in_a_log_from_elsewhere_names_file_and_line(clips_dir, tmp_path, mouse):
    stem = copy_clip(clips_dir / "clip_000000", tmp_path)
    for suffix in (".frames.npy", ".meta.json"):
        Path(f"{stem}{suffix}").unlink()
    lines = []
    for text in Path(f"{stem}.jsonl").read_text().splitlines():
        line = json.loads(text)
        del line["wm"]  # as the VPT recorder writes it: the mouse counts are all there is
        lines.append(line)
    lines[4]["mouse"].update(mouse)
    Path(f"{stem}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(ClipError, match=r"clip\.jsonl:5: .*(exceeds|not a number)"):
        read_clip(stem)


def test_not_json_line_names_file_and_line(clips_dir, tmp_path):
    stem = copy_clip(clips_dir / "clip_000000", tmp_path)
    lines = Path(f"{stem}.jsonl").read_text().splitlines()
    lines[2] = lines[2][:20]
    Path(f"{stem}.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ClipError, match=r"clip\.jsonl:3: not JSON"):
        read_clip(stem)


def test_non_utf8_action_log_names_file_and_line(clips_dir, tmp_path):
    stem = copy_clip(clips_dir / "clip_000000", tmp_path)
    lines = Path(f"{stem}.jsonl").read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"tick"', b'"t\xffck"')
    Path(f"{stem}.jsonl").write_bytes(b"".join(lines))
    with pytest.raises(ClipError, match=r"clip\.jsonl:4: not UTF-8 text"):
        read_clip(stem)


@pytest.mark.parametrize("version", ["1", None, True, [1]])
def test_a_format_version_that_is_not_a_number_is_a_clip_error(clips_dir, tmp_path, version):
    stem = copy_clip(clips_dir / "clip_000000", tmp_path)
    meta = json.loads(Path(f"{stem}.meta.json").read_text())
    Path(f"{stem}.meta.json").write_text(json.dumps({**meta, "format_version": version}))
    with pytest.raises(ClipError, match=r"clip\.meta\.json: field 'format_version' must be a whole number"):
        read_clip(stem)


def test_missing_meta_json_means_incomplete(clips_dir, tmp_path):
    stem = copy_clip(clips_dir / "clip_000000", tmp_path)
    Path(f"{stem}.meta.json").unlink()
    with pytest.raises(ClipError, match=r"clip\.meta\.json: missing, so the clip is incomplete"):
        read_clip(stem)


def test_frames_npy_shape_mismatch_with_meta(clips_dir, tmp_path):
    stem = copy_clip(clips_dir / "clip_000000", tmp_path)
    np.save(f"{stem}.frames.npy", np.zeros((12, 16, 8, 3), np.uint8))
    with pytest.raises(ClipError, match=r"clip\.frames\.npy: holds uint8 \(12, 16, 8, 3\)"):
        read_clip(stem)


def test_missing_action_log_is_named(clips_dir, tmp_path):
    stem = copy_clip(clips_dir / "clip_000000", tmp_path)
    Path(f"{stem}.jsonl").unlink()
    with pytest.raises(ClipError, match=r"clip\.jsonl: action log missing"):
        read_clip(stem)


def test_no_clip_at_all_is_named(tmp_path):
    with pytest.raises(ClipError, match="nothing"):
        read_clip(tmp_path / "nothing")


# --- ClipWindows ------------------------------------------------------------------------

def test_windows_count_and_content(clips_dir):
    windows = ClipWindows(clips_dir, length=5)  # clips of 12, 12 and 6 frames -> 2 + 2 + 1 windows
    assert len(windows) == 5
    item = windows[1]
    assert item["clip"] == "clip_000000" and item["start"] == 5
    assert item["obs"].dtype == torch.uint8 and item["obs"].shape == (5, 3, 16, 16)
    assert item["keys"].dtype == torch.float32 and item["keys"].shape == (5, 9)
    assert item["camera"].dtype == torch.float32 and item["camera"].shape == (5, 2)
    clip = read_clip(clips_dir / "clip_000000")
    assert torch.equal(item["obs"], torch.from_numpy(np.array(clip.frames[5:10])).permute(0, 3, 1, 2))
    assert torch.equal(item["keys"], torch.from_numpy(np.stack([a.keys_vector() for a in clip.actions[5:10]])))
    assert windows[-1]["clip"] == "clip_000002" and windows[-1]["start"] == 0
    with pytest.raises(IndexError):
        windows[5]


def test_windows_stride_and_too_short_clips(clips_dir):
    assert len(ClipWindows(clips_dir, length=5, stride=1)) == 8 + 8 + 2
    assert len(ClipWindows(clips_dir, length=7)) == 2  # the 6-frame clip gives none
    for bad in (dict(length=0), dict(length=4, stride=0), dict(length=4, size=0)):
        with pytest.raises(ValueError):
            ClipWindows(clips_dir, **bad)


def test_windows_resize_and_mixed_sizes(clips_dir, tmp_path):
    copy_clip(clips_dir / "clip_000000", tmp_path, "small")
    make_clips(tmp_path / "big", frames=12, clip_frames=12, size=32)
    with pytest.raises(ValueError, match="different sizes"):
        ClipWindows(tmp_path, length=4)
    windows = ClipWindows(tmp_path, length=4, size=24)
    assert {windows[i]["obs"].shape for i in range(len(windows))} == {(4, 3, 24, 24)}


def test_windows_pickle_without_frames(clips_dir):
    windows = ClipWindows(clips_dir, length=4)
    windows[0]  # opens a memory map
    state = pickle.dumps(windows)
    assert len(state) < 10_000  # the frames themselves (30 x 768 bytes) stay on disk
    again = pickle.loads(state)
    assert torch.equal(again[3]["obs"], windows[3]["obs"])
