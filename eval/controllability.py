"""Action controllability: keyboard and mouse accuracy, read back from the video by an inverse dynamics model.

What it measures: our IDM (eval/idm.py, shipped in assets/idm) reads which actions turned each frame into the
next; we compare its reading with the actions the model was asked to follow. Scored exactly as GameWorld
Score's action-control script scores the VPT IDM:
- keyboard: four tasks, forward/back (3 classes: neither or both, forward only, back only), left/right
  (3 classes, same rule), attack (2) and jump (2). For each task, the accuracy (sklearn's micro precision)
  over all transitions of all videos pooled; keyboard accuracy = the mean of the four.
- mouse: the camera delta of each transition in one of 9 buckets (still, up, down, left, right and the four
  diagonals), an axis counting as moving when |delta| > 0.01 degrees (GameWorld's camera_direction threshold);
  accuracy per video, then the mean over videos.
A video of T frames has T - 1 transitions; actions[t] is scored against the change from frame t to t + 1.

How it differs from the paper's scorer: the paper uses OpenAI's VPT IDM (trained on real Minecraft, 128x128);
ours is a small IDM trained on our simulator, so it reads our world's cues (hand swing, eye height, field of
view); on the simulator's true benchmark videos it scores 0.981 keyboard and 0.999 mouse
(assets/idm/MODEL_CARD.md). The paper's VPT IDM can be plugged in with --vpt-idm (eval/scorers.py).
"""

from __future__ import annotations

import numpy as np

from eval.labels import BINARY_KEYS, PredictedActions, labels_from_actions

SCORER_NAME = "our IDM (assets/idm), GameWorld scoring"
KEYBOARD_TASKS = ("fb", "lr", "attack", "jump")


def camera_bucket(pitch_class: np.ndarray, yaw_class: np.ndarray) -> np.ndarray:
    """9 buckets from the two 3-class axis directions (0 still, 1 +, 2 -): bucket = 3 * pitch + yaw."""
    return 3 * np.asarray(pitch_class) + np.asarray(yaw_class)


def task_labels(labels: dict[str, np.ndarray] | PredictedActions, name: str) -> np.ndarray:
    """Per-transition classes of one keyboard task (fb, lr: 0/1/2; attack, jump: 0/1), from labels or a prediction."""
    get = labels.__getitem__ if isinstance(labels, dict) else lambda k: getattr(labels, k)
    if name in ("fb", "lr"):
        return np.asarray(get(name)).astype(np.int64)
    return (np.asarray(get("keys"))[:, BINARY_KEYS.index(name)] > 0.5).astype(np.int64)


def score_predictions(
    preds: list[PredictedActions], labels: list[dict[str, np.ndarray]]
) -> dict[str, float]:
    """GameWorld keyboard and mouse accuracy over videos; also per-task accuracies for the report."""
    if len(preds) != len(labels) or not preds:
        raise ValueError(f"need as many predictions as label sets (got {len(preds)} and {len(labels)})")
    result: dict[str, float] = {}
    for task in KEYBOARD_TASKS:
        p = np.concatenate([task_labels(pr, task) for pr in preds])
        t = np.concatenate([task_labels(lb, task) for lb in labels])
        if len(p) != len(t):
            raise ValueError(f"task {task}: {len(p)} predictions against {len(t)} labels")
        result[f"acc_{task}"] = float(np.mean(p == t))
    result["keyboard"] = float(np.mean([result[f"acc_{t}"] for t in KEYBOARD_TASKS]))
    per_video = [
        float(np.mean(camera_bucket(pr.pitch, pr.yaw) == camera_bucket(lb["pitch"], lb["yaw"])))
        for pr, lb in zip(preds, labels)
    ]
    result["mouse"] = float(np.mean(per_video))
    return result


def video_labels(keys: np.ndarray, camera: np.ndarray, n_frames: int) -> dict[str, np.ndarray]:
    """Labels for the n_frames - 1 transitions of a video from its action rows (at least n_frames - 1)."""
    if len(keys) < n_frames - 1:
        raise ValueError(f"{len(keys)} actions cannot label the {n_frames - 1} transitions of {n_frames} frames")
    return labels_from_actions(keys[: n_frames - 1], camera[: n_frames - 1])


def video_accuracy(pred: PredictedActions, labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-video keyboard and mouse accuracy (the suite averages the pooled form over videos itself)."""
    return score_predictions([pred], [labels])
