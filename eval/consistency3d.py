"""3D consistency: do the frames look like one rigid scene seen by a moving camera?

What it measures: between frames t and t+1 (every other t) we match a grid of points with dense optical flow, fit the
camera motion (an essential matrix, OpenCV's findEssentialMat with RANSAC and the renderer's intrinsics),
and measure how far each match lies from its epipolar line: the Sampson distance, the first-order
reprojection error of the best 3D point for that match. Matches whose forward and backward flows disagree
(nothing consistent was found) count at the cap. Consecutive frames, not frames two apart: at 5 degrees of
turn a frame, frames two apart moved too far for a reliable flow at 64x64 and true videos lost most matches.
A rigid world under any camera motion, including a pure turn, fits with small errors; melting, sliding or
hallucinated geometry does not.
Score per video (our protocol) = clip(1 - mean error / CAP_PX, 0, 1): errors capped at 1 px of a 64x64 frame.

How it differs from the paper's scorer: GameWorld Score runs DROID-SLAM (learned dense bundle adjustment,
frames resized to about 512x512, intrinsics 500/256) over every frame of the video and takes the mean
reprojection error of its factor graph, score = 1 - error / 2.5, not clipped. DROID-SLAM weights cannot be
downloaded here. DROID measures that error on its feature grid, 1/8 of the 512x512 input: one unit there is
8 px at 512, which is one pixel of a 64x64 frame. So our 1 px cap is 1 DROID unit, 2.5 times stricter than
the paper's 2.5, not "8 px at 512".

On DROID's scale (`consistency_3d_droid_scale`, used by `--protocol gameworld`): every consecutive pair, errors
in DROID grid units (pixels x 64 / sqrt(H W)), matches capped and lost matches counted at DROID_MAX = 2.5 units,
score = 1 - mean / 2.5. What the two-view estimate stands in for: the Sampson distance is the first-order
reprojection error of the best 3D point for one match under the best two-view geometry, the quantity DROID's
bundle adjustment minimises over the whole clip; DROID finds more, learned matches and fits one trajectory and
depth map to all frames, so its error on a clip is at least that of two views fitted alone (expect our numbers
to be a little better than DROID's on the same video). The calibration is the unit conversion above, nothing
fitted; docs/EVAL.md gives both scales measured on the simulator's videos and the baselines. The per-match cap
keeps our score in [0, 1], where DROID's can go below 0 on a video it cannot track.
"""

from __future__ import annotations

import cv2
import numpy as np

from eval.flow import DEFAULT_FOV_DEG, grid_matches, intrinsics

CAP_PX = 1.0
DROID_MAX = 2.5  # GameWorld Score's empirical maximum, in DROID grid units (1/8 of 512 px = 1 px at 64x64)
DROID_GRID = 64  # DROID's feature grid side for a square video resized to 512x512
MIN_MATCHES = 12
SCORER_NAME = "flow matches + findEssentialMat, Sampson error, 1 - err/1px"
DROID_SCALE_NAME = "flow matches + findEssentialMat, Sampson error on DROID's grid, every pair, 1 - err/2.5 (DROID-SLAM's scale)"


def sampson_distance(pts_a: np.ndarray, pts_b: np.ndarray, fundamental: np.ndarray) -> np.ndarray:
    """Sampson distance (pixels) of each match (N, 2) to the epipolar geometry of `fundamental` (3, 3)."""
    ones = np.ones((len(pts_a), 1))
    xa = np.hstack([pts_a, ones])  # (N, 3)
    xb = np.hstack([pts_b, ones])
    fxa = xa @ fundamental.T  # epipolar lines in b
    ftxb = xb @ fundamental  # epipolar lines in a
    numerator = np.sum(xb * fxa, axis=1) ** 2
    denominator = fxa[:, 0] ** 2 + fxa[:, 1] ** 2 + ftxb[:, 0] ** 2 + ftxb[:, 1] ** 2
    return np.sqrt(numerator / np.maximum(denominator, 1e-12))


def pair_error(a: np.ndarray, b: np.ndarray, fov_deg: float = DEFAULT_FOV_DEG, cap: float = CAP_PX) -> float:
    """Mean epipolar (Sampson) error in pixels between two frames, each match capped at `cap` (lost ones count at it)."""
    h, w = a.shape[:2]
    pts_a, pts_b, consistent = grid_matches(a, b)
    errors = np.full(len(pts_a), cap)
    if consistent.sum() < MIN_MATCHES:
        return float(errors.mean())
    good_a, good_b = pts_a[consistent].astype(np.float64), pts_b[consistent].astype(np.float64)
    motion = np.linalg.norm(good_b - good_a, axis=1)
    if np.median(motion) < 0.05:
        # No camera motion: the identity explains every match; the error is how far points moved anyway.
        errors[consistent] = np.minimum(motion, cap)
        return float(errors.mean())
    k = intrinsics(h, w, fov_deg)
    essential, _ = cv2.findEssentialMat(good_a, good_b, k, method=cv2.RANSAC, prob=0.999, threshold=0.5)
    if essential is None or essential.shape != (3, 3):
        # RANSAC can return several stacked solutions or none; take the first or give up on this pair.
        if essential is None or essential.shape[0] < 3:
            return float(errors.mean())
        essential = essential[:3]
    k_inv = np.linalg.inv(k)
    fundamental = k_inv.T @ essential @ k_inv
    errors[consistent] = np.minimum(sampson_distance(good_a, good_b, fundamental), cap)
    return float(errors.mean())


def reprojection_errors(
    frames: np.ndarray, gap: int = 1, stride: int = 2, fov_deg: float = DEFAULT_FOV_DEG, cap: float = CAP_PX
) -> np.ndarray:
    """Pairwise errors (pixels) for (t, t+gap), t = 0, stride, 2*stride, ..."""
    return np.asarray(
        [pair_error(frames[t], frames[t + gap], fov_deg, cap) for t in range(0, len(frames) - gap, stride)], np.float64
    )


def consistency_3d(frames: np.ndarray, gap: int = 1, stride: int = 2) -> float:
    """clip(1 - mean error / CAP_PX, 0, 1) over a video (T, H, W, 3) uint8."""
    if len(frames) <= gap:
        raise ValueError(f"3D consistency needs more than {gap} frames, got {len(frames)}")
    return float(np.clip(1.0 - reprojection_errors(frames, gap, stride).mean() / CAP_PX, 0.0, 1.0))


def consistency_3d_droid_scale(frames: np.ndarray) -> tuple[float, float]:
    """(score, mean error in DROID grid units) as GameWorld Score reports DROID-SLAM: 1 - error / 2.5, every pair."""
    if len(frames) < 2:
        raise ValueError(f"3D consistency needs at least 2 frames, got {len(frames)}")
    h, w = frames.shape[1:3]
    px_per_unit = np.sqrt(h * w) / DROID_GRID  # 1.0 for 64x64 frames
    errors = reprojection_errors(frames, gap=1, stride=1, cap=DROID_MAX * px_per_unit) / px_per_unit
    error = float(errors.mean())
    return 1.0 - error / DROID_MAX, error
