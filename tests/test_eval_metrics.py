"""The offline scorers on short simulator videos: each ranks its own bad baseline below the true video."""

import numpy as np
import pytest

from data.actions import Action
from data.benchmark_actions import benchmark_actions
from eval import aesthetic, baselines, consistency3d, fidelity, image_quality, pose, scenario, smoothness, temporal
from eval.suite import Job, simulate


@pytest.fixture(scope="module")
def walk():
    """17 true frames of walking forward while turning right, and the true camera path."""
    job = Job("forest_0", "forward_camera_r", tuple(benchmark_actions()["forward_camera_r"][:17]))
    return simulate(job)


def test_brisque_ranks_noise_below_a_true_frame(walk):
    noise = baselines.noise(walk.frames, "x")
    assert image_quality.brisque_score(walk.frames[4]) < image_quality.brisque_score(noise[4])
    assert image_quality.image_quality(noise) < image_quality.image_quality(walk.frames)


def test_brisque_features_reject_grey_images():
    with pytest.raises(ValueError, match="RGB"):
        image_quality.brisque_features(np.zeros((8, 8), np.uint8))


def test_aesthetic_proxy_ranks_noise_lowest(walk):
    assert aesthetic.aesthetic_quality(baselines.noise(walk.frames, "x")) < aesthetic.aesthetic_quality(walk.frames)


def test_smoothness_ranks_shuffled_below_true_and_frozen_is_perfect(walk):
    true = smoothness.motion_smoothness(walk.frames)
    assert smoothness.motion_smoothness(baselines.shuffled(walk.frames, "x")) < true
    assert smoothness.motion_smoothness(baselines.frozen(walk.frames)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="3 frames"):
        smoothness.motion_smoothness(walk.frames[:2])


def test_3d_consistency_ranks_noise_and_shuffled_below_true(walk):
    true = consistency3d.consistency_3d(walk.frames)
    assert consistency3d.consistency_3d(baselines.noise(walk.frames, "x")) < true
    assert consistency3d.consistency_3d(baselines.shuffled(walk.frames, "x")) < true


def test_pose_recovers_a_turn_and_its_sign():
    job = Job("plain_0", "camera_r", tuple([Action(camera=(0.0, 5.0))] * 3))
    truth = simulate(job)
    pitch, yaw = pose.camera_turn(truth.frames[0], truth.frames[1])
    assert yaw == pytest.approx(5.0, abs=1.0) and abs(pitch) < 1.0
    job = Job("plain_0", "camera_up", tuple([Action(camera=(4.0, 0.0))] * 3))
    pitch, yaw = pose.camera_turn(*simulate(job).frames[:2])
    assert pitch == pytest.approx(4.0, abs=1.0) and abs(yaw) < 1.0


def test_pose_following_ranks_frozen_below_true(walk):
    true_score, true_err = pose.pose_following(walk.frames, walk.path)
    frozen_score, frozen_err = pose.pose_following(baselines.frozen(walk.frames), walk.path)
    assert true_err < 10.0 < frozen_err and frozen_score < true_score


def test_pose_error_is_measured_over_windows_so_it_does_not_grow_with_length():
    for frames in (17, 65):
        true = pose.true_path_from_camera(np.tile([[0.0, 5.0]], (frames - 1, 1)))
        drifting = true + np.arange(frames)[:, None] * np.array([0.0, 1.0])  # one degree too far every frame
        assert pose.path_error(drifting, true) == pytest.approx(8.5)  # (1 + ... + 16) / 16, in every window
    steps = np.diff(true, axis=0, prepend=true[:1])  # 65 frames, every turn read right but one
    steps[10] = np.nan  # unknown: taken as no turn, 5 degrees behind until the window ends at frame 16
    score, err = pose.score_steps(steps, true)
    assert err == pytest.approx(7 * 5.0 / 64) and score == pytest.approx(1 - err / pose.CAP_DEG)


def test_true_camera_path_clamps_pitch():
    path = pose.true_path_from_camera(np.array([[60.0, 1.0], [60.0, 1.0]]))
    assert path[-1].tolist() == [90.0, 2.0]
    with pytest.raises(ValueError, match="shape"):
        pose.path_error(np.zeros((3, 2)), np.zeros((4, 2)))


def test_scenario_round_trip_returns_for_the_simulator():
    trip = tuple(scenario.round_trip_actions(4, turn_deg=10.0))
    frames = simulate(Job("icy_0", "scenario_round_trip", trip, "scenario")).frames
    assert len(frames) == 9
    assert scenario.scenario_consistency(frames) > 0.99
    assert scenario.scenario_consistency(baselines.noise(frames, "x")) < 0.8
    with pytest.raises(ValueError, match="axis"):
        scenario.round_trip_actions(2, axis="roll")


def test_fidelity_is_perfect_on_itself_and_falls_on_noise(walk):
    same = fidelity.fidelity_curves(walk.frames, walk.frames)
    assert min(same["psnr"]) == fidelity.PSNR_CAP_DB and min(same["ssim"]) == pytest.approx(1.0)
    noisy = fidelity.fidelity_curves(baselines.noise(walk.frames, "x"), walk.frames)
    assert max(noisy["psnr"][1:]) < 15 and max(noisy["ssim"][1:]) < 0.3
    with pytest.raises(ValueError, match="shape"):
        fidelity.fidelity_curves(walk.frames[:3], walk.frames)


def test_temporal_consistency_from_features():
    steady = np.ones((5, 8))
    assert temporal.consistency_from_features(steady) == pytest.approx(1.0)
    flicker = np.eye(5, 8)
    assert temporal.consistency_from_features(flicker) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="2 frames"):
        temporal.consistency_from_features(steady[:1])


def test_baselines_keep_the_start_frame_and_are_deterministic(walk):
    for kind in ("frozen", "shuffled", "noise"):
        out = baselines.apply(kind, walk.frames, "name")
        assert out.shape == walk.frames.shape and np.array_equal(out[0], walk.frames[0])
        assert np.array_equal(out, baselines.apply(kind, walk.frames, "name"))
    assert baselines.mismatched_action_name("b", ["a", "b", "c"]) == "c"
    with pytest.raises(ValueError, match="unknown"):
        baselines.apply("blur", walk.frames, "name")
