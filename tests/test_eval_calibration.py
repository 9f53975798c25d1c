"""Calibration: the simulator's true videos score highest, and every dimension ranks its own bad baseline lowest.

Runs the suite on the true videos and the four baselines (2 scenes x 8 actions x 33 frames + round trips)
with the shipped IDM. Slow (about a minute): run with `-m slow`.
"""

import pytest
import torch

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
@pytest.mark.parametrize(
    "dimension, worst",
    [
        ("image_quality", "noise"),
        ("aesthetic", "noise"),
        ("temporal", "shuffled"),
        ("smoothness", "shuffled"),
        ("keyboard", "frozen"),
        ("mouse", "frozen"),
        ("keyboard", "mismatched"),
        ("mouse", "mismatched"),
        ("consistency_3d", "noise"),
        ("pose_following", "frozen"),
        ("scenario", "noise"),
        ("scenario", "mismatched"),
        ("ssim", "noise"),
    ],
)
def test_truth_beats_the_baseline_meant_to_break_this_dimension(summaries, dimension, worst):
    assert summaries["truth"][dimension] > summaries[worst][dimension] + 0.02


@pytest.mark.slow
@pytest.mark.parametrize("dimension, worst", [("image_quality", "noise"), ("aesthetic", "noise"), ("ssim", "noise")])
def test_own_baseline_is_the_lowest_of_all(summaries, dimension, worst):
    others = [s[dimension] for name, s in summaries.items() if name != worst]
    assert summaries[worst][dimension] < min(others)


@pytest.mark.slow
def test_truth_is_the_best_on_the_action_and_physics_dimensions(summaries):
    for dimension in ("keyboard", "mouse", "pose_following", "ssim"):  # a frozen video aces scenario
        best = max(summaries, key=lambda name: summaries[name][dimension])
        assert best == "truth", f"{dimension}: {best} beats the true videos"
