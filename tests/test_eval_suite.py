"""The suite end to end on a tiny run: generate, score, cache, resume, report; and the CLI's guard rails."""

import argparse
import json

import numpy as np
import pytest
import torch

from data.actions import write_actions
from data.video import write_mp4
from eval import cli
from eval.idm.model import IDMConfig, InverseDynamicsModel
from eval.report import leaderboard
from eval.suite import (
    BaselineSource,
    FolderInUse,
    Scorers,
    SimulatorSource,
    SuiteConfig,
    make_jobs,
    prepare_folder,
    run_info,
    run_suite,
    simulate,
)  # fmt: skip

TINY = SuiteConfig(scenes=1, actions=2, frames=9, scenario_turn_frames=2, batch=4)


@pytest.fixture(scope="module")
def idm_dir(tmp_path_factory):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("idm")
    InverseDynamicsModel(IDMConfig()).eval().save_pretrained(path)
    return path


class CountingSource(SimulatorSource):
    def __init__(self):
        self.made = 0

    def generate(self, jobs, truths):
        self.made += len(jobs)
        return super().generate(jobs, truths)


def _scorers(idm_dir):

    return Scorers(InverseDynamicsModel.from_pretrained(idm_dir))


def test_jobs_cover_scenes_actions_and_a_round_trip():
    jobs = make_jobs(TINY)
    assert [j.kind for j in jobs] == ["benchmark", "benchmark", "scenario"]
    assert all(j.frames == 9 for j in jobs[:2]) and jobs[2].frames == 5
    assert len({j.name for j in make_jobs(SuiteConfig(scenes=8, actions=8, frames=33))}) == 8 * 8 + 8
    with pytest.raises(ValueError, match="scenes"):
        SuiteConfig(scenes=0)


def test_run_scores_caches_and_resumes(tmp_path, idm_dir):
    scorers, source = _scorers(idm_dir), CountingSource()
    info = run_info(source, TINY, scorers, str(idm_dir))
    prepare_folder(tmp_path, info, force=False)
    jobs = make_jobs(TINY)
    rows = run_suite(source, jobs, tmp_path, scorers, TINY, progress=False)
    assert source.made == 3 and len(rows) == 3
    bench = rows[0]
    assert set(bench) >= {"image_quality", "aesthetic", "temporal", "smoothness", "consistency_3d", "mouse", "psnr_curve"}
    assert bench["psnr_curve"][1] == 60.0 and bench["pose_error_deg"] < 5  # the simulator matches itself
    assert 0 <= rows[2]["scenario"] <= 1 and (tmp_path / "videos" / f"{jobs[0].name}.mp4").is_file()
    prepare_folder(tmp_path, info, force=False)  # same run: resumes
    again = run_suite(source, jobs, tmp_path, scorers, TINY, progress=False)
    assert source.made == 3 and again == rows


def test_a_folder_of_another_run_is_never_overwritten_silently(tmp_path, idm_dir):
    scorers = _scorers(idm_dir)
    prepare_folder(tmp_path, run_info(SimulatorSource(), TINY, scorers, "x"), force=False)
    other = run_info(BaselineSource("frozen"), TINY, scorers, "x")
    with pytest.raises(FolderInUse, match="source"):
        prepare_folder(tmp_path, other, force=False)
    prepare_folder(tmp_path, other, force=True)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "report.html").write_text("someone's report")
    with pytest.raises(FolderInUse, match="report.html"):
        prepare_folder(foreign, other, force=False)


def test_mismatched_baseline_shows_another_actions_video():
    jobs = make_jobs(TINY)
    actions = {j.action: j.actions for j in jobs if j.kind == "benchmark"}
    source = BaselineSource("mismatched", actions)
    truth = simulate(jobs[0])
    (frames,) = source.generate([jobs[0]], [truth])
    assert np.array_equal(frames, simulate(jobs[1]).frames)
    with pytest.raises(ValueError, match="unknown baseline"):
        BaselineSource("blur")


def _args(**kw):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    argv = []
    for key, value in kw.items():
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, *([str(v) for v in value] if isinstance(value, list) else [str(value)])]
    return parser.parse_args(argv)


@pytest.mark.slow
def test_cli_scores_a_video_folder_with_truth_and_prints_the_table(tmp_path, idm_dir, capsys):
    job = make_jobs(TINY)[0]
    videos = tmp_path / "videos_in"
    videos.mkdir()
    truth = simulate(job)
    write_mp4(videos / f"{job.name}.mp4", truth.frames)
    write_actions(videos / f"{job.name}.jsonl", list(job.actions))
    out = tmp_path / "out"
    assert cli.main(_args(videos=videos, out=out, idm=idm_dir)) == 0
    printed = capsys.readouterr().out
    assert "| Image |" in printed and "report.html" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["videos"] == 1 and report["summary"]["psnr"] > 25  # H.264 (crf 18) of the true video
    assert "BRISQUE" in report["run"]["scorers"]["image_quality"]
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "Matrix-Game (published)" in html
    assert "| Matrix-Game (published) |" in leaderboard([out])


def test_cli_refuses_a_missing_paper_scorer_and_a_missing_source(tmp_path, idm_dir, capsys):
    assert cli.main(_args(ground_truth=True, out=tmp_path, musiq=tmp_path / "musiq.pth")) == 2
    assert "no such file" in capsys.readouterr().err
    weights = tmp_path / "musiq.pth"
    weights.write_bytes(b"0")
    assert cli.main(_args(ground_truth=True, out=tmp_path, musiq=weights)) == 2
    assert "pyiqa" in capsys.readouterr().err
    assert cli.main(_args(out=tmp_path)) == 2


def test_summary_pools_keyboard_tasks_and_averages_mouse_per_video():
    from eval.report import markdown_table, summarize

    def row(correct, mouse):
        counts = {t: [correct, 4] for t in ("fb", "lr", "attack", "jump")}
        return {"kind": "benchmark", "keyboard_counts": counts, "mouse": mouse, "image_quality": 0.5}

    summary = summarize([row(4, 1.0), row(2, 0.5), {"kind": "scenario", "scenario": 0.9}])
    assert summary["keyboard"] == pytest.approx(6 / 8) and summary["mouse"] == pytest.approx(0.75)
    assert summary["scenario"] == 0.9 and summary["psnr"] is None
    table = markdown_table({"run": summary}, published=True)
    assert "| run | 0.500 |" in table and "| Oasis (published) | 0.65 |" in table
