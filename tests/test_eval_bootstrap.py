"""Intervals (eval/bootstrap.py) and paired comparisons (eval/compare.py) on made-up per-video rows: fast, no scoring."""

import json

import numpy as np
import pytest

from app.cli import main
from eval import bootstrap
from eval.compare import compare
from eval.report import leaderboard, markdown_table, summarize

SCENES = ["beach_0", "desert_0", "forest_0"]
ACTIONS = ["forward", "back", "camera_l", "jump"]


def make_rows(seed=0, shift=0.0, scene_effect=0.0, noise=0.05, frames=9):
    """One run's rows: a benchmark video per scene x action, plus a round trip per scene."""
    rng = np.random.default_rng(seed)
    rows = []
    for s, scene in enumerate(SCENES):
        for action in ACTIONS:
            value = float(np.clip(0.6 + shift + scene_effect * s + noise * rng.standard_normal(), 0, 1))
            correct = int(round((frames - 1) * value))
            rows.append({
                "name": f"{scene}__{action}", "scene": scene, "action": action, "kind": "benchmark", "frames": frames,
                "image_quality": value, "aesthetic": value, "temporal": value, "smoothness": value, "consistency_3d": value,
                "mouse": value, "keyboard_counts": {t: [correct, frames - 1] for t in ("fb", "lr", "attack", "jump")},
                "psnr_curve": [60.0] + [20 + 10 * value] * (frames - 1), "ssim_curve": [1.0] + [value] * (frames - 1),
                "pose_score": value, "pose_error_deg": 30 * (1 - value),
            })  # fmt: skip
        rows.append({"name": f"{scene}__scenario_round_trip", "scene": scene, "action": "scenario_round_trip",
                     "kind": "scenario", "frames": 5, "scenario": float(np.clip(0.9 + shift, 0, 1))})
    return rows


def test_unit_weights_give_exactly_the_reports_scores():
    rows = make_rows(noise=0.2)
    rows[0]["keyboard_counts"]["jump"] = [0, 30]  # pooled, not averaged: a long video weighs more
    summary = summarize(rows)
    grid = bootstrap.Grid(rows, *bootstrap.grid_axes(rows))
    ones = (np.ones((1, len(SCENES))), np.ones((1, len(ACTIONS))))
    for dim in bootstrap.DIMENSIONS:
        assert grid.statistic(dim, *ones)[0] == pytest.approx(summary[dim], abs=1e-12), dim


def test_a_resample_counts_a_video_as_often_as_its_scene_and_action_were_drawn():
    rows = make_rows(noise=0.2)
    grid = bootstrap.Grid(rows, SCENES, ACTIONS)
    scene_w, action_w = np.array([[2.0, 1.0, 0.0]]), np.array([[0.0, 3.0, 1.0, 0.0]])
    weighted = {(r["scene"], r["action"]): scene_w[0, SCENES.index(r["scene"])] * action_w[0, ACTIONS.index(r["action"])]
                for r in rows if r["kind"] == "benchmark"}  # fmt: skip
    expected = sum(w * r["mouse"] for r in rows if r["kind"] == "benchmark" for w in [weighted[(r["scene"], r["action"])]])
    assert grid.statistic("mouse", scene_w, action_w)[0] == pytest.approx(expected / sum(weighted.values()))
    correct = sum(weighted[(r["scene"], r["action"])] * r["keyboard_counts"]["fb"][0] for r in rows if r["kind"] == "benchmark")
    total = sum(weighted[(r["scene"], r["action"])] * r["keyboard_counts"]["fb"][1] for r in rows if r["kind"] == "benchmark")
    fb_only = {t: np.zeros_like(grid.total[t]) for t in grid.total}
    fb_only["fb"] = grid.total["fb"]
    grid.total = fb_only  # the other tasks drop out of the mean, leaving fb's pooled accuracy
    assert grid.statistic("keyboard", scene_w, action_w)[0] == pytest.approx(correct / total)


def test_intervals_are_seeded_hold_the_score_and_widen_with_a_scene_effect():
    rows = make_rows(noise=0.05)
    first, again = bootstrap.intervals(rows), bootstrap.intervals(rows)
    assert first == again  # the same seed: the same report every time
    summary = summarize(rows)
    for dim in bootstrap.DIMENSIONS:
        low, high = first[dim]
        assert low <= summary[dim] <= high, dim
    # The scenes differ as a whole: resampling scenes (not videos one by one) must show it.
    scene_rows = make_rows(noise=0.0, scene_effect=0.1)
    low, high = bootstrap.intervals(scene_rows)["mouse"]
    assert high - low > 0.1
    assert bootstrap.intervals(make_rows(noise=0.0))["mouse"] == [pytest.approx(0.6)] * 2  # nothing varies


def test_paired_differences_tell_a_real_shift_from_noise(tmp_path):
    def write(name, rows, source):
        (tmp_path / name).mkdir()
        report = {"summary": summarize(rows), "run": {"source": source}, "videos": rows}
        (tmp_path / name / "report.json").write_text(json.dumps(report))
        return tmp_path / name

    base = write("fp32", make_rows(seed=0), "model (fp32)")
    same = write("same", make_rows(seed=0), "model again")
    worse = write("int8", make_rows(seed=0, shift=-0.03), "model (int8)")
    other_noise = write("noisy", make_rows(seed=1), "model, other noise")
    assert not any(d["real"] for d in compare(same, base).values())
    assert compare(same, base)["mouse"]["interval"] == [0.0, 0.0]
    shifted = compare(worse, base)
    assert shifted["mouse"]["real"] and shifted["mouse"]["interval"][1] < 0
    assert shifted["mouse"]["difference"] == pytest.approx(-0.03, abs=1e-9)
    assert not compare(other_noise, base)["mouse"]["real"]  # 0.05 noise per video: no real difference


def test_compare_refuses_runs_over_different_videos_and_prints_which_differences_are_real(tmp_path, capsys):
    def write(name, rows):
        (tmp_path / name).mkdir()
        report = {"summary": summarize(rows), "run": {"source": name}, "videos": rows}
        (tmp_path / name / "report.json").write_text(json.dumps(report))

    write("a", make_rows())
    write("b", make_rows(shift=-0.1))
    write("fewer", [r for r in make_rows() if r["action"] != "jump"])
    assert main(["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "| Mouse |" in out and "yes: excludes 0" in out and "Differences that exclude zero: Image" in out
    assert main(["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "fewer")]) == 2
    assert "error: the two runs were not scored on the same videos: 3 only in" in capsys.readouterr().err
    assert main(["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "nowhere")]) == 2
    assert "no report.json" in capsys.readouterr().err


def test_tables_show_the_interval_beside_every_score(tmp_path):
    rows = make_rows()
    summary = {**summarize(rows), "intervals": bootstrap.intervals(rows)}
    line = markdown_table({"run": summary}).splitlines()[2]
    assert line.count("(") == len(bootstrap.DIMENSIONS) and "–" in line
    (tmp_path / "report.json").write_text(json.dumps({"summary": summary, "run": {"source": "run"}, "videos": rows}))
    assert "95% interval" in leaderboard([tmp_path])
