"""GameWorld Score's protocol beside ours, and video recorded elsewhere (any size, no poses) for eval and training."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from small_worlds import SeedScene

from app.cli import main
from data.actions import NOOP, Action, to_minerl, to_vpt_line
from data.alignment import check_action_lines, our_actions
from data.benchmark_actions import benchmark_actions
from data.frame_fit import fit_frames, fit_notice
from data.video import decode_mp4, write_mp4
from eval.idm.model import IDMConfig, InverseDynamicsModel
from eval.videos import bench76_name

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def idm_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("idm")
    InverseDynamicsModel(IDMConfig()).eval().save_pretrained(path)
    return path


def bench76_file(path: Path, action: str) -> Path:
    """A file as GameWorld Score ships it (Bench76/test_<action>.jsonl): 65 MineRL env-action dicts."""
    path.write_text("".join(json.dumps(to_minerl(a)) + "\n" for a in benchmark_actions()[action]))
    return path


def moving_frames(count: int, height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    """A textured picture sliding sideways: something the scorers can follow, made in no time."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 255, (height, width + 2 * count, 3), dtype=np.uint8)
    return np.stack([texture[:, 2 * t : 2 * t + width] for t in range(count)])


def test_alignment_names_and_fitting():
    lines = [Action({"forward"}), Action({"jump"}), Action({"back"})]
    assert our_actions(lines, "ours") == lines
    assert our_actions(lines, "gameworld") == [Action({"jump"}), Action({"back"}), NOOP]  # line t + 1 makes frame t + 1
    with pytest.raises(ValueError, match=r"v\.mp4: 66 frames, but a\.jsonl has only 65 action lines"):
        check_action_lines("v.mp4", 66, "a.jsonl", 65)
    check_action_lines("v.mp4", 33, "a.jsonl", 65)  # lines past the video's end are ignored
    names = list(benchmark_actions())
    assert bench76_name("0094_test_attack_camera_down", names) == ("0094_test", "attack_camera_down")
    assert bench76_name("plain_0_camera_ul", names) == ("plain_0", "camera_ul")
    assert bench76_name("forward", names) == ("", "forward") and bench76_name("0001_dance", names) is None
    wide = np.zeros((2, 72, 96, 3), np.uint8)
    wide[:, :, 12:84] = 200  # the centred 72x72 square is all 200: cropping, not squashing, keeps only it
    fitted = fit_frames(wide, 64, tell=False)
    assert fitted.shape == (2, 64, 64, 3) and (fitted == 200).all()
    assert fit_notice(72, 96, 64) == "note: 96x72 frames are centre-cropped to 72x72, then resized to 64x64 (docs/FORMATS.md)"


def test_generate_gameworld_makes_65_frames_from_a_65_line_bench76_file(tmp_path, monkeypatch):
    monkeypatch.setattr("app.worlds.scenes", lambda: [SeedScene(3)])
    bench76_file(tmp_path / "test_forward.jsonl", "forward")
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"id": "0000_forward", "start": "seed-3", "actions": "test_forward.jsonl"}) + "\n")
    out = tmp_path / "gw"
    argv = ["generate", str(jobs), "--out", str(out), "--model", "simulator", "--protocol", "gameworld", "--no-progress"]
    assert main(argv) == 0
    frames, _ = decode_mp4(out / "0000_forward.mp4")
    assert len(frames) == 65
    assert len((out / "0000_forward.jsonl").read_text().splitlines()) == 65  # our alignment: lines 2..65 + the pad
    assert main(argv[:-3] + ["--out", str(tmp_path / "ours"), "--no-progress"]) == 0  # our protocol: start + 65
    assert len(decode_mp4(tmp_path / "ours" / "0000_forward.mp4")[0]) == 66


def test_eval_gameworld_scores_a_bench76_folder_and_reports_the_bad_videos(tmp_path, idm_dir, capsys):
    folder = tmp_path / "gw"
    folder.mkdir()
    write_mp4(folder / "0000_forward.mp4", moving_frames(9, 72, 96))  # recorded elsewhere: 96x72, no action file
    write_mp4(folder / "0001_camera_ul.mp4", moving_frames(9, seed=1))
    write_mp4(folder / "0002_jump.mp4", moving_frames(66, seed=2))  # one frame more than Bench76's 65 lines
    write_mp4(folder / "0003_dance.mp4", moving_frames(9, seed=3))  # not one of the 76 names
    out = tmp_path / "out"
    code = main(["eval", "--videos", str(folder), "--protocol", "gameworld", "--out", str(out), "--idm", str(idm_dir),
                 "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "0002_jump.mp4: 66 frames, but the Bench76 file test_jump.jsonl has only 65 action lines" in err
    assert "0003_dance.mp4: the name does not end in one of the 76 Bench76 action names" in err
    assert "centre-cropped to 72x72, then resized to 64x64" in err
    report = json.loads((out / "report.json").read_text())
    summary, rows = report["summary"], {r["name"]: r for r in report["videos"]}
    assert summary["videos"] == 2 and summary["failed_videos"] == 2
    assert rows["0000__forward"]["frames"] == 9 and rows["0001__camera_ul"]["kind"] == "benchmark"
    assert "reprojection_error" in rows["0000__forward"] and summary["consistency_3d"] <= 1.0
    assert report["run"]["suite"]["protocol"] == "gameworld" and "every frame" in report["run"]["scorers"]["image_quality"]
    assert "DROID" in report["run"]["scorers"]["consistency_3d"]
    assert "Videos not scored" in (out / "report.md").read_text()


def test_eval_refuses_a_66_frame_video_beside_a_65_line_file_in_our_protocol(tmp_path, idm_dir, capsys):
    folder = tmp_path / "v"
    folder.mkdir()
    write_mp4(folder / "0000_forward.mp4", moving_frames(66))
    bench76_file(folder / "0000_forward.jsonl", "forward")
    code = main(["eval", "--videos", str(folder), "--out", str(tmp_path / "out"), "--idm", str(idm_dir)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "0000_forward.mp4: 66 frames, but" in err and "0000_forward.jsonl has only 65 action lines" in err


def outside_clips(folder: Path, count: int = 2, frames: int = 12) -> Path:
    """Clips as recorded elsewhere: a 96x72 mp4 and a VPT jsonl with no poses (no world seed, nothing of ours)."""
    folder.mkdir()
    pose_fields = {"wm", "xpos", "ypos", "zpos", "yaw", "pitch"}
    for i in range(count):
        write_mp4(folder / f"episode{i}.mp4", moving_frames(frames, 72, 96, seed=i))
        lines = [to_vpt_line(Action({"forward"}, (0.0, 1.5)), tick=t) for t in range(frames)]
        (folder / f"episode{i}.jsonl").write_text(
            "".join(json.dumps({k: v for k, v in line.items() if k not in pose_fields}) + "\n" for line in lines)
        )
    return folder


@pytest.mark.slow
def test_training_on_outside_clips_fits_them_or_refuses_before_any_work(tmp_path, capsys):
    from test_train import tiny_config

    from worldmodel.train import run

    data = outside_clips(tmp_path / "clips")
    cfg = tiny_config(data=str(data), seq_len=3, ae_steps=2, steps=2, eval_every=2, ckpt_every=2)
    walk = dataclasses.replace(cfg, dit=dataclasses.replace(cfg.dit, egomotion=True, view_fov=70.0))
    with pytest.raises(ValueError, match="2 of 2 clips have no world seed .* without egomotion"):
        run(walk, tmp_path / "walk")
    assert not (tmp_path / "walk" / "autoencoder").exists()  # refused before the autoencoder stage
    ema = run(cfg, tmp_path / "run")
    assert ema is not None and (tmp_path / "run" / "pipeline").is_dir()
    assert "96x72 frames are centre-cropped to 72x72, then resized to 16x16" in capsys.readouterr().err


def test_training_refuses_a_log_one_line_short_as_eval_does(tmp_path):
    from data.clips import ClipError, read_clip

    data = outside_clips(tmp_path / "clips", count=1)
    lines = (data / "episode0.jsonl").read_text().splitlines()
    (data / "episode0.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ClipError, match=r"episode0\.mp4: 12 frames, but .*episode0\.jsonl has only 11 action lines"):
        read_clip(data / "episode0")

