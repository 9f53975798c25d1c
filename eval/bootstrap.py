"""95% intervals on every dimension of a report, from a seeded two-way bootstrap over scenes and actions.

What a score averages over is a grid: start scenes x benchmark actions (one video in each cell), plus one
round-trip video per scene for scenario consistency. Videos that share a scene are alike (the same world,
the same sky), and so are videos that share an action (a camera-up move hides walking in every scene), so
the videos are not independent draws and resampling them one by one would make the intervals too narrow.
This resamples what the score averages over: the scenes (with replacement) and, independently, the actions
(with replacement); a resample holds every video whose scene and action were both drawn, counted as often
as the two were drawn together (the "pigeonhole" bootstrap for crossed designs, Owen 2007, which errs on
the wide side). The same drawn scenes weight the round-trip videos. Each dimension is then computed from
the resample exactly as eval/report.summarize computes it from the run:
- keyboard pools the transitions of the drawn videos per task (counts times weights) and averages the four
  task accuracies, as the scorer pools them;
- every other dimension averages its per-video values over the drawn videos.
The interval is the 2.5th to 97.5th percentile of 2,000 resamples drawn from a fixed seed, so a report is
the same every time it is written. A folder of videos not named SCENE__ACTION has one "scene": its videos
are resampled one by one.

`paired_differences` draws the same resamples for two runs over the same videos, so what the two share
(which scenes and actions happen to be hard) cancels, and the interval is on the difference itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RESAMPLES = 2000
SEED = 0
LEVEL = 0.95
METHOD = (
    f"two-way bootstrap: scenes and actions resampled independently with replacement (pigeonhole bootstrap), "
    f"keyboard transitions pooled over the drawn videos; percentile {LEVEL:.0%} interval, {RESAMPLES} resamples, seed {SEED}"
)
KEYBOARD_TASKS = ("fb", "lr", "attack", "jump")  # eval.controllability's; repeated so this module stays light
# The summary's dimensions that get an interval (eval/report.py's PAPER_DIMS + OUR_DIMS).
DIMENSIONS = (
    "image_quality", "aesthetic", "temporal", "smoothness", "keyboard", "mouse", "consistency_3d",
    "scenario", "psnr", "ssim", "pose_following", "pose_error_deg",
)  # fmt: skip


def _video_value(dim: str, row: dict[str, Any]) -> float | None:
    """The per-video number that eval/report.summarize averages for `dim` (None: this video does not count)."""
    truth_dims = {"psnr": "psnr_curve", "ssim": "ssim_curve", "pose_following": "pose_score", "pose_error_deg": "pose_error_deg"}
    if dim in truth_dims:
        if not row.get("psnr_curve"):  # summarize counts these over the videos that have a true video only
            return None
        if dim in ("psnr", "ssim"):
            return float(np.mean(row[truth_dims[dim]][1:]))
        value = row.get(truth_dims[dim])
    else:
        value = row.get(dim)
    return None if value is None else float(value)


class Grid:
    """A run's per-video numbers laid out on scenes x actions (NaN where a cell has no number)."""

    def __init__(self, rows: list[dict[str, Any]], scenes: list[str], actions: list[str]):
        self.scenes, self.actions = scenes, actions
        s_index = {s: i for i, s in enumerate(scenes)}
        a_index = {a: i for i, a in enumerate(actions)}
        bench = [r for r in rows if r.get("kind") == "benchmark"]
        trips = [r for r in rows if r.get("kind") == "scenario"]
        shape = (len(scenes), len(actions))
        self.values: dict[str, np.ndarray] = {}
        for dim in DIMENSIONS:
            if dim in ("keyboard", "scenario"):
                continue
            grid = np.full(shape, np.nan)
            for r in bench:
                value = _video_value(dim, r)
                if value is not None:
                    grid[s_index[r["scene"]], a_index[r["action"]]] = value
            self.values[dim] = grid
        self.scenario = np.full(len(scenes), np.nan)
        for r in trips:
            if r.get("scenario") is not None:
                self.scenario[s_index[r["scene"]]] = r["scenario"]
        # Keyboard: correct and total transitions per task and cell, pooled (not averaged) by the statistic.
        self.correct = {t: np.zeros(shape) for t in KEYBOARD_TASKS}
        self.total = {t: np.zeros(shape) for t in KEYBOARD_TASKS}
        for r in bench:
            for task, (correct, total) in (r.get("keyboard_counts") or {}).items():
                if task in self.correct:
                    self.correct[task][s_index[r["scene"]], a_index[r["action"]]] = correct
                    self.total[task][s_index[r["scene"]], a_index[r["action"]]] = total

    def statistic(self, dim: str, scene_weights: np.ndarray, action_weights: np.ndarray) -> np.ndarray:
        """The dimension's score under each resample: weights (B, scenes) and (B, actions) -> (B,), NaN when
        a resample holds no video with a number for it."""
        def pooled(grid: np.ndarray) -> np.ndarray:  # sum over cells of weight(scene) * weight(action) * grid
            return np.einsum("bs,sa,ba->b", scene_weights, grid, action_weights)

        with np.errstate(invalid="ignore", divide="ignore"):
            if dim == "scenario":
                present = ~np.isnan(self.scenario)
                return (scene_weights @ np.where(present, self.scenario, 0.0)) / (scene_weights @ present)
            if dim == "keyboard":
                tasks = [pooled(self.correct[t]) / pooled(self.total[t]) for t in KEYBOARD_TASKS if self.total[t].sum() > 0]
                return np.mean(tasks, axis=0) if tasks else np.full(len(scene_weights), np.nan)
            grid = self.values[dim]
            present = ~np.isnan(grid)
            return pooled(np.where(present, grid, 0.0)) / pooled(present.astype(float))

    def has(self, dim: str) -> bool:
        if dim == "scenario":
            return bool(np.any(~np.isnan(self.scenario)))
        if dim == "keyboard":
            return any(self.total[t].sum() > 0 for t in KEYBOARD_TASKS)
        return bool(np.any(~np.isnan(self.values[dim])))


def grid_axes(*runs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The scenes and the benchmark actions of one or more runs, sorted (so the draws never depend on row order)."""
    rows = [r for run in runs for r in run if r.get("kind") in ("benchmark", "scenario")]
    scenes = sorted({r["scene"] for r in rows})
    actions = sorted({r["action"] for r in rows if r["kind"] == "benchmark"})
    return scenes, actions


def resample_weights(scenes: int, actions: int, resamples: int = RESAMPLES, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """How often each scene and each action is drawn in each resample: (B, scenes) and (B, actions) counts."""
    rng = np.random.default_rng(seed)
    scene_weights = rng.multinomial(scenes, np.full(scenes, 1 / scenes), size=resamples).astype(float)
    if not actions:  # only round-trip videos
        return scene_weights, np.zeros((resamples, 0))
    action_weights = rng.multinomial(actions, np.full(actions, 1 / actions), size=resamples).astype(float)
    return scene_weights, action_weights


def _percentiles(draws: np.ndarray) -> list[float] | None:
    draws = draws[~np.isnan(draws)]
    if len(draws) == 0:
        return None
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return [float(low), float(high)]


def intervals(rows: list[dict[str, Any]], resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, list[float] | None]:
    """{dimension: [low, high]} for every dimension the run has a number for (None for the others)."""
    scenes, actions = grid_axes(rows)
    if not scenes:
        return {dim: None for dim in DIMENSIONS}
    grid = Grid(rows, scenes, actions)
    weights = resample_weights(len(scenes), len(actions), resamples, seed)
    return {dim: _percentiles(grid.statistic(dim, *weights)) if grid.has(dim) else None for dim in DIMENSIONS}


def paired_differences(
    rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, list[float] | None]:
    """{dimension: [low, high]}: the interval on run A's score minus run B's, both runs drawn by the same
    resamples; for the dimensions both runs have a number for."""
    scenes, actions = grid_axes(rows_a, rows_b)
    grid_a, grid_b = Grid(rows_a, scenes, actions), Grid(rows_b, scenes, actions)
    weights = resample_weights(len(scenes), len(actions), resamples, seed)
    return {
        dim: _percentiles(grid_a.statistic(dim, *weights) - grid_b.statistic(dim, *weights))
        for dim in DIMENSIONS
        if grid_a.has(dim) and grid_b.has(dim)
    }
