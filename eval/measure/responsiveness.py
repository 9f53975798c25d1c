"""(b) Does the model follow the actions? Turns and steps read back from its frames, beside the simulator's,
and walking where the recorded player was already walking."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from data.actions import Action
from eval.fidelity import psnr
from eval.flow import flow_shift_x, phase_shift_x, radial_flow
from eval.measure.rollouts import HORIZON, rollout
from eval.pose import camera_turn
from worldmodel.pipeline import WorldPipeline

TURN_DEG = 10.0

CONDITIONS: dict[str, Action] = {
    "yaw_right": Action(camera=(0.0, TURN_DEG)),
    "yaw_left": Action(camera=(0.0, -TURN_DEG)),
    "noop": Action(),
    "forward": Action(frozenset({"forward"})),
}


def video_stats(video: np.ndarray) -> dict[str, float]:
    pairs = list(zip(video[:-1], video[1:]))
    yaw = [camera_turn(a, b)[1] for a, b in pairs]
    return {
        "yaw_deg_per_frame": float(np.nanmean(yaw)) if not all(map(math.isnan, yaw)) else math.nan,
        "flow_x_px_per_frame": float(np.mean([flow_shift_x(a, b) for a, b in pairs])),
        "shift_px_per_frame": float(np.mean([phase_shift_x(a, b) for a, b in pairs])),
        "radial_px_per_frame": float(np.mean([radial_flow(a, b) for a, b in pairs])),
    }


def responsiveness(pipe: WorldPipeline, n_scenes: int) -> dict:
    from eval.suite import pick_scenes

    scenes = pick_scenes(n_scenes)
    size = pipe.image_size
    names = list(CONDITIONS)
    truth = {(s.name, c): s.game(size).rollout([CONDITIONS[c]] * HORIZON).frames for s in scenes for c in names}
    keys = list(truth)
    starts = np.stack([truth[k][0] for k in keys])
    gen = rollout(pipe, starts, [[CONDITIONS[c]] * HORIZON for _, c in keys])
    generated = {k: v for k, v in zip(keys, gen)}

    stats: dict[str, dict[str, dict[str, float]]] = {"model": {}, "simulator": {}}
    for source, videos in (("model", generated), ("simulator", truth)):
        for c in names:
            rows = [video_stats(videos[(s.name, c)]) for s in scenes]
            stats[source][c] = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
            if c.startswith("yaw"):
                sign = 1.0 if c == "yaw_right" else -1.0
                stats[source][c]["yaw_sign_correct"] = float(np.mean([np.sign(r["yaw_deg_per_frame"]) == sign for r in rows]))

    # Which true condition (same scene) is each generated video closest to, by PSNR over its frames 1..8?
    confusion = {c: {d: 0 for d in names} for c in names}
    closer_than_noop = {c: [] for c in names if c != "noop"}
    for s in scenes:
        for c in names:
            g = generated[(s.name, c)][1:]
            scores = {d: float(np.mean([psnr(a, b) for a, b in zip(g, truth[(s.name, d)][1:])])) for d in names}
            confusion[c][max(scores, key=scores.get)] += 1
            if c != "noop":
                closer_than_noop[c].append(scores[c] - scores["noop"])
    correct = sum(confusion[c][c] for c in names)
    return {
        "scenes": [s.name for s in scenes],
        "turn_deg_per_frame": TURN_DEG,
        "frames": HORIZON,
        "stats": stats,
        "nearest_true_condition_confusion": confusion,
        "nearest_true_condition_accuracy": correct / (len(scenes) * len(names)),
        "psnr_gain_vs_true_noop_db": {c: float(np.mean(v)) for c, v in closer_than_noop.items()},
    }


def walking_in_play(pipe: WorldPipeline, val_dir: Path, max_windows: int = 40) -> dict:
    """Walking where the player is already walking (a standing start also has to get going): windows of the
    recorded clips where forward was held with no turn for the 2 frames before and the 8 after; the model's
    8 frames with those actions and with no-op, the outward optical flow of each beside the true frames'."""
    from data.clips import find_clips, read_clip

    starts, actions, truths = [], [], []
    for path in find_clips(val_dir):
        clip = read_clip(path)
        t = 10
        while t < len(clip.frames) - HORIZON - 2 and len(starts) < max_windows:
            window = clip.actions[t - 2 : t + HORIZON]
            if all(a.keys == frozenset({"forward"}) and max(map(abs, a.camera)) < 0.5 for a in window):
                starts.append(clip.frames[t])
                actions.append(list(clip.actions[t : t + HORIZON]))
                truths.append(np.asarray(clip.frames[t : t + HORIZON + 1]))
                t += 30  # windows apart
            else:
                t += 1
    if not starts:
        return {"windows": 0}
    forward = rollout(pipe, np.stack(starts), actions)
    still = rollout(pipe, np.stack(starts), [[Action()] * HORIZON for _ in actions])

    def radial(videos: np.ndarray | list[np.ndarray]) -> float:
        return float(np.mean([radial_flow(a, b) for v in videos for a, b in zip(v[:-1], v[1:])]))

    return {
        "windows": len(starts),
        "true_radial": radial(truths),
        "model_forward_radial": radial(forward),
        "model_noop_radial": radial(still),
    }
