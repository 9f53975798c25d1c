"""Motion smoothness: how well each frame is predicted by interpolating its two neighbours.

What it measures: for every inner frame t, we interpolate a frame half-way between t-1 and t+1 and compare
it with the real frame t. Smooth, physically continuous motion is predicted well; jumps, flicker and
reshuffled frames are not. Score per video = 1 - mean |interpolated - real| / 255 (the VBench / GameWorld
normalisation), averaged over the inner frames, so it lies in [0, 1].

How it differs from the paper's scorer: GameWorld Score (after VBench) interpolates with AMT, a learned
video frame interpolation network, on the even frames only. AMT weights cannot be downloaded here. We
interpolate with OpenCV DIS optical flow in both directions (t-1 -> t+1 and back) and the linear-motion
approximation of the flow at the half-way time (as in Super SloMo), then blend the two warped neighbours.
A flow interpolator is weaker than AMT on large or non-rigid motions, so absolute values run a little lower.
A frozen video scores a perfect 1.0 here as in the paper: smoothness does not reward motion.
"""

from __future__ import annotations

import numpy as np

from eval.flow import dis_flow, warp

SCORER_NAME = "DIS-flow midpoint interpolation, 1 - MAE/255"


def interpolate_middle(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """A frame half-way between `before` and `after` (both (H, W, 3) uint8), float32 in [0, 255]."""
    f01 = dis_flow(before, after)
    f10 = dis_flow(after, before)
    # Flow from the middle time to each end, assuming straight-line motion (Super SloMo, t = 0.5).
    to_before = -0.25 * f01 + 0.25 * f10
    to_after = 0.25 * f01 - 0.25 * f10
    return 0.5 * warp(before, to_before) + 0.5 * warp(after, to_after)


def interpolation_errors(frames: np.ndarray, stride: int = 1) -> np.ndarray:
    """Mean absolute error (0..255) of interpolating frame t from t-1 and t+1, for t = 1, 1+stride, ..."""
    errors = []
    for t in range(1, len(frames) - 1, stride):
        middle = interpolate_middle(frames[t - 1], frames[t + 1])
        errors.append(float(np.mean(np.abs(middle - frames[t].astype(np.float32)))))
    return np.asarray(errors, np.float64)


def motion_smoothness(frames: np.ndarray, stride: int = 2) -> float:
    """1 - mean interpolation MAE / 255 over a video (T, H, W, 3) uint8, T >= 3."""
    if len(frames) < 3:
        raise ValueError(f"motion smoothness needs at least 3 frames, got {len(frames)}")
    return float(1.0 - interpolation_errors(frames, stride).mean() / 255.0)
