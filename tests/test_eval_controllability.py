"""GameWorld's keyboard and mouse scoring, and the labels it scores against."""

import numpy as np
import pytest

from data.actions import Action, stack
from eval.controllability import camera_bucket, score_predictions, video_labels
from eval.labels import PredictedActions, direction_class, labels_from_actions, pair_class


def _pred(labels: dict) -> PredictedActions:
    return PredictedActions(
        labels["fb"], labels["lr"], labels["pitch"], labels["yaw"], labels["keys"].astype(int), labels["camera"]
    )


def test_pair_class_follows_gameworld_both_pressed_is_none():
    keys, _ = stack([Action({"forward"}), Action({"back"}), Action({"forward", "back"}), Action()])
    assert pair_class(keys, "forward", "back").tolist() == [1, 2, 0, 0]


def test_camera_direction_threshold_is_a_hundredth_of_a_degree():
    assert direction_class(np.array([0.0, 0.005, 0.02, -0.02, 5.0])).tolist() == [0, 0, 1, 2, 1]
    assert len(set(camera_bucket(np.repeat([0, 1, 2], 3), np.tile([0, 1, 2], 3)).tolist())) == 9


def test_perfect_predictions_score_one_and_errors_count_per_task():
    acts = [Action({"forward", "attack"}, (5.0, 0.0)), Action({"left", "jump"}, (0.0, -5.0)), Action(), Action()]
    keys, camera = stack(acts)
    labels = labels_from_actions(keys, camera)
    assert score_predictions([_pred(labels)], [labels])["keyboard"] == 1.0
    wrong = _pred(labels)
    wrong.fb = np.zeros(4, np.int64)  # misses the forward press: 3 of 4 right on forward/back
    wrong.yaw = np.zeros(4, np.int64)  # misses the left turn: 3 of 4 camera buckets right
    scores = score_predictions([wrong], [labels])
    assert scores["acc_fb"] == 0.75 and scores["keyboard"] == pytest.approx((0.75 + 3) / 4)
    assert scores["mouse"] == 0.75


def test_mouse_averages_videos_and_keyboard_pools_frames():
    long_keys, long_cam = stack([Action({"forward"})] * 8)
    short_keys, short_cam = stack([Action({"forward"})] * 2)
    long_lab, short_lab = labels_from_actions(long_keys, long_cam), labels_from_actions(short_keys, short_cam)
    bad_short = _pred(short_lab)
    bad_short.fb = np.zeros(2, np.int64)
    bad_short.pitch = np.ones(2, np.int64)
    scores = score_predictions([_pred(long_lab), bad_short], [long_lab, short_lab])
    assert scores["acc_fb"] == pytest.approx(8 / 10)  # pooled over the 10 transitions
    assert scores["mouse"] == pytest.approx(0.5)  # the mean of 1.0 and 0.0


def test_labels_need_an_action_per_transition():
    keys, camera = stack([Action()] * 3)
    assert len(video_labels(keys, camera, 4)["fb"]) == 3
    with pytest.raises(ValueError, match="transitions"):
        video_labels(keys, camera, 5)
    with pytest.raises(ValueError, match="as many"):
        score_predictions([], [])
