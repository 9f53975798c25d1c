"""Batch generation: job files, outputs in the clip format, sharding, resuming after a kill."""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from small_worlds import SeedScene

import app.generate as generate
from app.generate import JobError, read_jobs, run_jobs
from app.worlds import SIMULATOR, WorldFactory
from data import clip_files
from data.actions import NOOP, Action, read_actions, to_minerl
from data.clips import decode_mp4, read_clip

REPO = Path(__file__).resolve().parents[1]




@pytest.fixture
def two_scenes(monkeypatch):
    monkeypatch.setattr("app.worlds.scenes", lambda: [SeedScene(3), SeedScene(4)])


def parse(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def write_jobs(path: Path, jobs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    return path


WALK = [to_minerl(Action({"forward"}, (0.0, 3.0)))] * 6


def test_bad_job_lines_name_the_file_and_line(tmp_path):
    cases = [
        ({"id": "a", "start": "seed-3", "actions": WALK, "speed": 2}, "unknown field"),
        ({"id": "a b", "start": "seed-3", "actions": WALK}, "id 'a b'"),
        ({"id": "a", "start": "seed-3", "actions": "missing.jsonl"}, "no such action script"),
        ({"id": "a", "start": "seed-3", "actions": [{"forward": 1, "jump_high": 1}]}, "unknown key"),
        ({"id": "a", "start": "seed-3", "actions": WALK, "frames": 7}, "only 6 actions"),
        ({"id": "a", "start": "seed-3", "actions": WALK, "quant": "int2"}, "'quant' must be"),
        ({"id": "a", "start": "seed-3"}, "missing 'actions'"),
    ]
    for job, message in cases:
        path = write_jobs(tmp_path / "jobs.jsonl", [{"id": "ok", "start": "seed-3", "actions": WALK}, job])
        with pytest.raises(JobError, match=message) as err:
            read_jobs(path)
        assert f"{path}:2" in str(err.value)
    path = tmp_path / "nan.jsonl"
    path.write_text('{"id": "a", "start": "seed-3", "actions": [{"forward": 1, "camera": [NaN, 0]}]}\n')
    with pytest.raises(JobError, match="NaN"):
        read_jobs(path)
    path = write_jobs(tmp_path / "dup.jsonl", [{"id": "a", "start": "0", "actions": WALK}] * 2)
    with pytest.raises(JobError, match="already used on line 1"):
        read_jobs(path)


def test_jobs_make_clips_the_simulator_agrees_with(tmp_path, two_scenes):
    script = tmp_path / "walk.jsonl"
    script.write_text("".join(json.dumps(d) + "\n" for d in WALK))
    jobs = read_jobs(write_jobs(tmp_path / "jobs.jsonl", [
        {"id": "file", "start": "seed-3", "actions": "walk.jsonl", "frames": 4},
        {"id": "inline", "start": 1, "actions": WALK, "seed": 5},
    ]))
    report = run_jobs(jobs, tmp_path / "out", WorldFactory("cpu"), SIMULATOR, progress=False)
    assert report.done == ["file", "inline"] and not report.failed
    clip = read_clip(tmp_path / "out" / "file.meta.json")  # a clip in the project's own format
    assert clip.frames.shape == (5, 64, 64, 3) and len(clip.actions) == 5
    assert clip.actions[:4] == [Action({"forward"}, (0.0, 3.0))] * 4 and clip.actions[4] == NOOP
    assert clip.meta["model"] == SIMULATOR and clip.meta["start"] == "seed-3" and clip.meta["actions"] == 4
    game = SeedScene(3).game(64)
    truth = [game.reset()] + [game.step(a) for a in clip.actions[:4]]
    assert np.abs(clip.frames.astype(int) - np.stack(truth).astype(int)).mean() < 8  # H.264 is lossy
    assert json.loads((tmp_path / "out" / "inline.meta.json").read_text())["start"] == "seed-4"


def test_ranks_split_the_jobs_without_overlap(tmp_path, two_scenes):
    jobs = read_jobs(write_jobs(tmp_path / "jobs.jsonl", [
        {"id": f"j{i}", "start": "seed-3", "actions": WALK[:2]} for i in range(5)]))
    out = tmp_path / "out"
    first = run_jobs(jobs, out, WorldFactory("cpu"), SIMULATOR, rank=0, world=2, progress=False)
    second = run_jobs(jobs, out, WorldFactory("cpu"), SIMULATOR, rank=1, world=2, progress=False)
    assert first.done == ["j0", "j2", "j4"] and second.done == ["j1", "j3"]
    assert sorted(p.name for p in out.glob("*.meta.json")) == [f"j{i}.meta.json" for i in range(5)]


def test_a_crash_mid_job_is_redone_and_finished_jobs_are_kept(tmp_path, two_scenes, monkeypatch):
    jobs = read_jobs(write_jobs(tmp_path / "jobs.jsonl", [
        {"id": f"j{i}", "start": "seed-3", "actions": WALK[:3]} for i in range(3)]))
    out = tmp_path / "out"
    real_write_actions = clip_files.write_actions  # the clip writer generate uses

    def crash_on_j1(path, actions, *rest):
        if Path(path).name == "j1.jsonl":
            (out / ".j1.jsonl.tmp").write_text('{"half": ')  # what a kill mid-write leaves
            raise KeyboardInterrupt  # stands in for the kill: nothing after it runs
        real_write_actions(path, actions, *rest)

    monkeypatch.setattr(clip_files, "write_actions", crash_on_j1)
    with pytest.raises(KeyboardInterrupt):
        run_jobs(jobs, out, WorldFactory("cpu"), SIMULATOR, progress=False)
    assert (out / "j1.mp4").exists() and not (out / "j1.meta.json").exists()
    kept = (out / "j0.meta.json").stat().st_mtime_ns
    monkeypatch.setattr(clip_files, "write_actions", real_write_actions)
    report = run_jobs(jobs, out, WorldFactory("cpu"), SIMULATOR, progress=False)
    assert report.skipped == ["j0"] and report.done == ["j1", "j2"]
    assert (out / "j0.meta.json").stat().st_mtime_ns == kept
    assert sorted(p.name for p in out.iterdir()) == sorted(f"j{i}{s}" for i in range(3)
                                                           for s in (".mp4", ".jsonl", ".meta.json"))
    for i in range(3):
        assert read_clip(out / f"j{i}").frames.shape == (4, 64, 64, 3)


def test_a_bad_job_fails_alone(tmp_path, two_scenes, capsys):
    path = write_jobs(tmp_path / "jobs.jsonl", [
        {"id": "picture", "start": "nowhere.png", "actions": WALK[:2]},
        {"id": "good", "start": "seed-4", "actions": WALK[:2]},
    ])
    assert generate.main(parse(generate, [str(path), "--out", str(tmp_path / "out"), "--model", SIMULATOR,
                                          "--device", "cpu", "--no-progress"])) == 1
    err = capsys.readouterr().err
    assert f"{path}:1" in err and "nowhere.png: no such image file" in err
    assert (tmp_path / "out" / "good.meta.json").exists() and not (tmp_path / "out" / "picture.mp4").exists()


# --- real processes: a tiny untrained world model, killed and rerun, and torchrun ----------

TINY = """
import sys
from worldmodel.autoencoder import FrameAutoencoder
from worldmodel.config import AutoencoderConfig, DiTConfig
from worldmodel.dit import CausalDiT
from worldmodel.pipeline import WorldPipeline
ae = AutoencoderConfig(image_size=64, latent_channels=4, downsample=4, encoder_channels=8, decoder_channels=8)
dit = DiTConfig(latent_channels=4, latent_size=16, patch_size=4, dim=32, depth=1, heads=2, window=3)
WorldPipeline(FrameAutoencoder(ae), CausalDiT(dit)).save_pretrained(sys.argv[1])
"""


def tiny_model_and_jobs(tmp_path: Path, count: int, frames: int) -> tuple[Path, Path]:
    model = tmp_path / "tiny"
    subprocess.run([sys.executable, "-c", TINY, str(model)], check=True, cwd=REPO)
    Image.fromarray(np.full((80, 120, 3), 90, np.uint8)).save(tmp_path / "start.png")
    actions = [to_minerl(Action({"forward"}, (0.0, 2.0)))] * frames
    jobs = write_jobs(tmp_path / "jobs.jsonl", [
        {"id": f"j{i:02d}", "start": "start.png", "actions": actions, "seed": i} for i in range(count)])
    return model, jobs


def check_complete(out: Path, count: int, frames: int) -> None:
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"j{i:02d}{s}" for i in range(count) for s in (".mp4", ".jsonl", ".meta.json"))
    for i in range(count):
        video, _ = decode_mp4(out / f"j{i:02d}.mp4")
        assert video.shape == (frames + 1, 64, 64, 3)
        assert len(read_actions(out / f"j{i:02d}.jsonl")) == frames + 1
        assert json.loads((out / f"j{i:02d}.meta.json").read_text())["seed"] == i


@pytest.mark.slow
def test_kill_mid_run_then_rerun_finishes_without_duplicates(tmp_path):
    count, frames = 20, 20
    model, jobs = tiny_model_and_jobs(tmp_path, count, frames)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "app.cli", "generate", str(jobs), "--out", str(out), "--model", str(model),
           "--device", "cpu", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.meta.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("*.meta.json")}
    assert 0 < len(finished) < count, "the kill should land mid-run"
    rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{count - len(finished)} generated, {len(finished)} already done" in rerun.stdout
    check_complete(out, count, frames)
    assert {n: (out / n).stat().st_mtime_ns for n in finished} == finished  # finished jobs untouched


@pytest.mark.slow
def test_torchrun_two_processes_share_the_jobs(tmp_path):
    if shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("torchrun is not installed beside this Python")
    count, frames = 6, 5
    model, jobs = tiny_model_and_jobs(tmp_path, count, frames)
    out = tmp_path / "out"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    run = subprocess.run([torchrun, "--standalone", "--nproc-per-node", "2", "-m", "app.cli", "generate",
                          str(jobs), "--out", str(out), "--model", str(model), "--device", "cpu", "--no-progress"],
                         cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "rank 0/2: 3 generated" in run.stdout and "rank 1/2: 3 generated" in run.stdout
    check_complete(out, count, frames)


def test_demo_falls_back_to_the_simulator_and_writes_its_files(tmp_path, monkeypatch, capsys):
    from app import demo

    monkeypatch.setattr("app.demo.default_model_available", lambda: (False, "no shipped checkpoint"))
    assert demo.main(parse(demo, ["--out", str(tmp_path), "--device", "cpu"])) == 0
    printed = capsys.readouterr().out
    assert "no shipped checkpoint; showing the real simulator" in printed and str(tmp_path / "demo.mp4") in printed
    clip = read_clip(tmp_path / "demo")
    assert len(clip.frames) == len(demo.demo_actions()) + 1 and clip.meta["model"] == SIMULATOR
    strip = np.asarray(Image.open(tmp_path / "demo-strip.png"))
    assert strip.shape[0] > 128 and strip.shape[1] > 10 * 128


# --- an edited job is not "done"; temp cleanup stays inside its own job -------------------

def test_an_edited_job_is_refused_then_made_again_with_force(tmp_path, two_scenes):
    path = write_jobs(tmp_path / "jobs.jsonl", [{"id": "a", "start": "seed-3", "actions": WALK[:2]}])
    out = tmp_path / "out"
    assert run_jobs(read_jobs(path), out, WorldFactory("cpu"), SIMULATOR, progress=False).done == ["a"]
    old_video = (out / "a.mp4").read_bytes()
    assert run_jobs(read_jobs(path), out, WorldFactory("cpu"), SIMULATOR, progress=False).skipped == ["a"]

    write_jobs(path, [{"id": "a", "start": "seed-4", "actions": WALK[:2], "seed": 5}])  # start and seed changed
    report = run_jobs(read_jobs(path), out, WorldFactory("cpu"), SIMULATOR, progress=False)
    assert report.done == [] and report.skipped == [] and len(report.failed) == 1
    assert "holds the output of a different job" in report.failed[0] and "seed: 0 there, 5 now" in report.failed[0]
    assert "seed-4" in report.failed[0] and "--force" in report.failed[0]
    assert (out / "a.mp4").read_bytes() == old_video  # kept

    report = run_jobs(read_jobs(path), out, WorldFactory("cpu"), SIMULATOR, progress=False, force=True)
    assert report.done == ["a"] and (out / "a.mp4").read_bytes() != old_video
    assert json.loads((out / "a.meta.json").read_text())["seed"] == 5


def test_temp_cleanup_leaves_another_jobs_files_alone(tmp_path):
    for name in (".a.mp4.tmp", ".a.meta.json.tmp", ".a.jsonl.k2j_x9q0.tmp", ".a.mp4.abcd1234.tmp",  # job a's
                 ".a.meta.json.x_y_z_01.tmp",  # (left by a kill)
                 ".a.b.mp4.tmp", ".a.b.jsonl.abcdefgh.tmp", ".a.b.meta.json.tmp", ".a.jsonl.mp4.tmp",  # a.b's, a.jsonl's
                 ".a.b.mp4.abcd1234.tmp", ".a.jsonl.mp4.abcd1234.tmp"):
        (tmp_path / name).write_text("x")
    generate.remove_stale_temps(tmp_path, "a")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".a.b.jsonl.abcdefgh.tmp", ".a.b.meta.json.tmp", ".a.b.mp4.abcd1234.tmp", ".a.b.mp4.tmp",
        ".a.jsonl.mp4.abcd1234.tmp", ".a.jsonl.mp4.tmp"]


def test_a_job_line_nested_too_deeply_is_a_job_error(tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text("[" * 50_000 + "\n")
    with pytest.raises(JobError, match=f"{path}:1: JSON nested too deeply"):
        read_jobs(path)
