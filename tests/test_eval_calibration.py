"""Calibration: the simulator's true videos score highest, and every dimension ranks its own bad baseline lowest.

Runs the suite on the true videos and the four baselines (2 scenes x 8 actions x 33 frames + round trips)
with the shipped IDM. Slow (about a minute): run with `-m slow`. The claims are eval/calibration.py's; the
last test checks them, with paired intervals, on finished runs of the full suite when
WORLDMODEL_CALIBRATION_RUNS names their folder (docs/EVAL.md, "The full suite").
"""

import os
from pathlib import Path

import pytest
import torch

from eval.calibration import CLAIM_MARGIN, LOWEST_OF_ALL, TRUTH_BEATS, TRUTH_IS_BEST, check_folders, check_summaries
from eval.idm.model import DEFAULT_PATH, InverseDynamicsModel
from eval.report import summarize
from eval.suite import BaselineSource, Scorers, SimulatorSource, SuiteConfig, make_jobs, run_suite

CFG = SuiteConfig(scenes=2, actions=8, frames=33, scenario_turn_frames=8)


@pytest.fixture(scope="module")
def summaries(tmp_path_factory):
    if not (DEFAULT_PATH / "model.safetensors").is_file():
        pytest.skip("no trained IDM in assets/idm")
    torch.set_num_threads(1)
    scorers = Scorers(InverseDynamicsModel.from_pretrained())
    jobs = make_jobs(CFG)
    actions = {j.action: j.actions for j in jobs if j.kind == "benchmark"}
    sources = {"truth": SimulatorSource()}
    sources.update({kind: BaselineSource(kind, actions) for kind in ("frozen", "shuffled", "noise", "mismatched")})
    out = {}
    for name, source in sources.items():
        rows = run_suite(source, jobs, tmp_path_factory.mktemp(name), scorers, CFG, progress=False)
        out[name] = summarize(rows)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("dimension, worst", TRUTH_BEATS)
def test_truth_beats_the_baseline_meant_to_break_this_dimension(summaries, dimension, worst):
    assert summaries["truth"][dimension] > summaries[worst][dimension] + CLAIM_MARGIN


@pytest.mark.slow
@pytest.mark.parametrize("dimension, worst", LOWEST_OF_ALL)
def test_own_baseline_is_the_lowest_of_all(summaries, dimension, worst):
    others = [s[dimension] for name, s in summaries.items() if name != worst]
    assert summaries[worst][dimension] < min(others)


@pytest.mark.slow
def test_truth_is_the_best_on_the_action_and_physics_dimensions(summaries):
    for dimension in TRUTH_IS_BEST:
        best = max(summaries, key=lambda name: summaries[name][dimension])
        assert best == "truth", f"{dimension}: {best} beats the true videos"


@pytest.mark.slow
def test_every_claim_holds_together_as_the_checker_reads_it(summaries):
    assert check_summaries(summaries) == []


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("WORLDMODEL_CALIBRATION_RUNS"), reason="WORLDMODEL_CALIBRATION_RUNS=ROOT not set")
def test_calibration_holds_on_finished_runs_with_intervals():
    checked, failures = check_folders(Path(os.environ["WORLDMODEL_CALIBRATION_RUNS"]))
    assert checked and failures == []


def test_the_checker_reads_report_folders_and_names_a_claim_that_fails(tmp_path, capsys):
    """Fast: made-up rows (tests/test_eval_bootstrap.py), one folder per run as the full suite's runs are laid out."""
    import json

    from test_eval_bootstrap import make_rows

    from eval import calibration

    def write(name, shift, seed):
        rows = make_rows(seed=seed, shift=shift)
        (tmp_path / name).mkdir(exist_ok=True)
        report = {"summary": summarize(rows), "run": {"source": name}, "videos": rows}
        (tmp_path / name / "report.json").write_text(json.dumps(report))

    for seed, (name, shift) in enumerate({"gt": 0.3, "frozen": 0.1, "shuffled": 0.0, "noise": -0.3, "mismatched": 0.05}.items()):
        write(name, shift, seed)
    assert calibration.main([str(tmp_path)]) == 0
    assert "calibration holds" in capsys.readouterr().out
    write("frozen", 0.3, 0)  # as good as the truth: a failed claim, and an interval that holds 0
    assert calibration.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED keyboard: the truth beats frozen by" in out and "holds 0" in out
    assert calibration.main([str(tmp_path / "nowhere")]) == 2
