"""The suite split over ranks (eval/shard.py): the same batches whatever the rank count, ranks meeting in one folder,
the report assembled once every video is in and byte for byte the same as one process's; and, marked slow,
the real thing under torchrun with a tiny world model."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from app.cli import main
from eval import shard
from eval.idm.model import IDMConfig, InverseDynamicsModel
from eval.suite import QUICK, Scorers, SimulatorSource, SuiteConfig, make_jobs, plan_batches, run_info, run_suite

TINY = SuiteConfig(scenes=1, actions=3, frames=5, scenario_turn_frames=2, batch=2)  # batches of 2, 1 and 1 videos
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scorers(tmp_path_factory):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("idm")
    InverseDynamicsModel(IDMConfig()).eval().save_pretrained(path)
    return Scorers(InverseDynamicsModel.from_pretrained(path)), path


class RecordingSource(SimulatorSource):
    """The simulator, noting every batch it was asked for (a world model's videos depend on their batch-mates)."""

    def __init__(self):
        self.batches = []

    def generate(self, jobs, truths):
        self.batches.append([j.name for j in jobs])
        return super().generate(jobs, truths)


def test_every_rank_count_cuts_the_same_batches_and_shares_them_out_whole():
    jobs = make_jobs(QUICK)
    whole = plan_batches(jobs, 16)
    assert [len(b) for b in whole] == [16, 16, 16, 16, 8] and all(len({j.frames for j in b}) == 1 for b in whole)
    for world in (1, 2, 3, 4, 7):
        shares = [shard.my_batches(jobs, 16, rank, world) for rank in range(world)]
        dealt = sorted(tuple(j.name for j in b) for share in shares for b in share)
        assert dealt == sorted(tuple(j.name for j in b) for b in whole)


def _run_rank(out, scorers, rank, world, source=None, report=True):
    idm, idm_path = scorers
    source = source or SimulatorSource()
    jobs = make_jobs(TINY)
    info = run_info(source, TINY, idm, str(idm_path))
    shard.prepare(out, info, jobs, force=False, rank=rank, wait_s=5)
    run_suite(source, jobs, out, idm, TINY, progress=False, batches=shard.my_batches(jobs, TINY.batch, rank, world))
    if shard.missing(out, [j.name for j in jobs]) or not report:  # (a report's plots take seconds)
        return None
    return shard.assemble(out, jobs)


@pytest.mark.slow  # two reports with their plots: about 5 s
def test_two_ranks_in_one_folder_write_the_report_one_process_writes(tmp_path, scorers):
    single = _run_rank(tmp_path / "one", scorers, 0, 1)
    assert single is not None and single["intervals"]["mouse"] is not None
    two = tmp_path / "two"
    assert _run_rank(two, scorers, 0, 2) is None  # rank 0 is done first: rank 1's share is still out
    assert not (two / "report.json").exists()
    assert _run_rank(two, scorers, 1, 2) is not None  # the last rank to finish writes the report
    for name in ("report.json", "report.md"):
        assert (two / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    assert shard.read_names(two) == [j.name for j in make_jobs(TINY)]


def test_a_resumed_batch_is_made_whole_again_and_only_its_missing_videos_are_scored(tmp_path, scorers):
    source = RecordingSource()
    _run_rank(tmp_path, scorers, 0, 1, source, report=False)
    first = list(source.batches)
    assert first == [[j.name for j in b] for b in plan_batches(make_jobs(TINY), TINY.batch)]
    gone = first[1][1]
    kept = tmp_path / "videos" / f"{first[1][0]}.json"
    stamp = kept.stat().st_mtime_ns
    (tmp_path / "videos" / f"{gone}.json").unlink()
    time.sleep(0.01)
    source.batches.clear()
    _run_rank(tmp_path, scorers, 0, 1, source, report=False)
    assert source.batches == [first[1]]  # the same batch-mates as before, so a world model makes the same video
    assert kept.stat().st_mtime_ns == stamp and (tmp_path / "videos" / f"{gone}.json").is_file()


class BrokenForOneSource(SimulatorSource):
    """The simulator, except that one video is a bad file."""

    def __init__(self, bad):
        self.bad = bad

    def generate(self, jobs, truths):
        if any(j.name == self.bad for j in jobs):
            raise ValueError(f"{self.bad}: not a video")
        return super().generate(jobs, truths)


def test_a_failed_video_is_listed_in_the_report_and_tried_again_by_the_next_run(tmp_path, scorers):
    bad = make_jobs(TINY)[1].name
    _run_rank(tmp_path, scorers, 0, 1, BrokenForOneSource(bad), report=False)
    assert shard.missing(tmp_path, [j.name for j in make_jobs(TINY)]) == []  # tried: the report can be written
    assert [r["name"] for r in (shard.read_row(tmp_path, j.name) for j in make_jobs(TINY)) if r["kind"] == "failed"] == [bad]
    _run_rank(tmp_path, scorers, 0, 1, report=False)  # the file fixed: scored, and no longer listed as failed
    assert shard.read_row(tmp_path, bad)["kind"] == "benchmark"
    assert not (tmp_path / "videos" / f"{bad}.failed.json").exists()


def test_assemble_writes_the_report_of_a_complete_folder_and_refuses_one_with_videos_missing(tmp_path, scorers, capsys):
    _run_rank(tmp_path, scorers, 0, 1, report=False)
    assert main(["eval", "--assemble", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["intervals"]["mouse"] is not None
    (tmp_path / "videos" / f"{make_jobs(TINY)[0].name}.json").unlink()
    capsys.readouterr()
    assert main(["eval", "--assemble", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "1 of 4 videos are not scored yet" in err and len(err.splitlines()) == 1
    assert main(["eval", "--assemble", str(tmp_path / "nowhere")]) == 2


def test_a_rank_waits_for_rank_0_and_gives_up_with_a_message(tmp_path):
    jobs = make_jobs(TINY)
    with pytest.raises(ValueError, match="rank 1: after 1 s"):
        shard.prepare(tmp_path, {"source": "x"}, jobs, force=False, rank=1, wait_s=1)
    os.environ["RANK"], os.environ["WORLD_SIZE"] = "2", "2"
    try:
        with pytest.raises(ValueError, match="RANK=2"):
            shard.rank_and_world()
    finally:
        del os.environ["RANK"], os.environ["WORLD_SIZE"]


@pytest.mark.slow
def test_torchrun_with_two_processes_writes_the_report_of_one(tmp_path):
    """The real command, with a tiny random world model (whose videos depend on their batch-mates) and the shipped IDM."""
    from worldmodel.autoencoder import FrameAutoencoder
    from worldmodel.config import AutoencoderConfig, DiTConfig
    from worldmodel.dit import CausalDiT
    from worldmodel.pipeline import WorldPipeline

    ae = AutoencoderConfig(image_size=64, latent_channels=4, downsample=4, encoder_channels=8, decoder_channels=8)
    dit = DiTConfig(latent_channels=4, latent_size=16, patch_size=4, dim=32, depth=2, heads=2, window=3)
    torch.manual_seed(0)
    WorldPipeline(FrameAutoencoder(ae), CausalDiT(dit)).save_pretrained(tmp_path / "tiny")
    args = ["-m", "app.cli", "eval", "--model", str(tmp_path / "tiny"), "--scenes", "2", "--actions", "2", "--frames", "9",
            "--batch", "2", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    for out, launcher in ((tmp_path / "one", [sys.executable]),
                          (tmp_path / "two", [str(torchrun), "--standalone", "--nproc-per-node", "2"])):
        command = [*launcher, *args, "--out", str(out)]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    for name in ("report.json", "report.md"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    summary = json.loads((tmp_path / "one" / "report.json").read_text())["summary"]
    assert all(summary["intervals"][d] is not None for d in ("image_quality", "keyboard", "mouse", "scenario", "ssim"))
    assert np.isfinite(summary["mouse"])


def test_rescore_gives_rows_of_the_old_pose_form_the_new_one_and_reassembles(tmp_path, scorers):
    from eval import pose, rescore

    _run_rank(tmp_path, scorers, 0, 1, report=False)
    fresh = {p.name: json.loads(p.read_text()) for p in (tmp_path / "videos").glob("*.json")}
    # Make the folder as an older version of the code left it: no turns kept, another score, the old scorer's name.
    for name, row in fresh.items():
        if "pose_steps" in row:
            old = {k: v for k, v in row.items() if k != "pose_steps"} | {"pose_score": 0.123}
            (tmp_path / "videos" / name).write_text(json.dumps(old))
    info = json.loads((tmp_path / "run.json").read_text())
    info["scorers"]["pose_following"] = "the old form"
    (tmp_path / "run.json").write_text(json.dumps(info))
    assert len(rescore.to_do(tmp_path)) == 3
    assert rescore.main([str(tmp_path)]) == 0
    again = {p.name: json.loads(p.read_text()) for p in (tmp_path / "videos").glob("*.json")}
    assert again.keys() == fresh.keys() and rescore.to_do(tmp_path) == []
    for name, row in again.items():
        # Re-read from the stored mp4 (H.264 at CRF 18), not the frames themselves: close, not identical.
        assert row.get("pose_score") == pytest.approx(fresh[name].get("pose_score"), abs=0.03)
        assert {k: v for k, v in row.items() if not k.startswith("pose")} == {
            k: v for k, v in fresh[name].items() if not k.startswith("pose")}
    assert json.loads((tmp_path / "run.json").read_text())["scorers"]["pose_following"] == pose.SCORER_NAME
    assert (tmp_path / "report.json").is_file()
    assert rescore.rescore(tmp_path) == 0  # done: nothing left to do
