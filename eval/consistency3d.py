"""3D consistency: do the frames look like one rigid scene seen by a moving camera?

What it measures: between frames t and t+1 (every other t) we match a grid of points with dense optical flow, fit the
camera motion (an essential matrix, OpenCV's findEssentialMat with RANSAC and the renderer's intrinsics),
and measure how far each match lies from its epipolar line: the Sampson distance, the first-order
reprojection error of the best 3D point for that match. Matches whose forward and backward flows disagree
(nothing consistent was found) count at the cap. Consecutive frames, not frames two apart: at 5 degrees of
turn a frame, frames two apart moved too far for a reliable flow at 64x64 and true videos lost most matches. A rigid world under any camera motion, including a pure
turn, fits with small errors; melting, sliding or hallucinated geometry does not.
Score per video = clip(1 - mean error / CAP_PX, 0, 1), like the paper's 1 - error / 2.5.

How it differs from the paper's scorer: GameWorld Score runs DROID-SLAM (learned dense bundle adjustment,
frames resized to 512x512, intrinsics 500/256) over the whole video and takes its mean reprojection error,
normalised by an empirical maximum of 2.5 px. DROID-SLAM weights cannot be downloaded here. Ours is two-view
only (no bundle adjustment over the whole clip), flow-matched instead of learned correspondences, and
measured in pixels of our 64x64 frames; CAP_PX = 1.0 px at 64x64 is about 8 px at the paper's 512x512.
"""

from __future__ import annotations

import cv2
import numpy as np

from eval.flow import DEFAULT_FOV_DEG, grid_matches, intrinsics

CAP_PX = 1.0
MIN_MATCHES = 12
SCORER_NAME = "flow matches + findEssentialMat, Sampson error, 1 - err/1px"


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


def pair_error(a: np.ndarray, b: np.ndarray, fov_deg: float = DEFAULT_FOV_DEG) -> float:
    """Mean capped epipolar (Sampson) error in pixels between two frames."""
    h, w = a.shape[:2]
    pts_a, pts_b, consistent = grid_matches(a, b)
    errors = np.full(len(pts_a), CAP_PX)
    if consistent.sum() < MIN_MATCHES:
        return float(errors.mean())
    good_a, good_b = pts_a[consistent].astype(np.float64), pts_b[consistent].astype(np.float64)
    motion = np.linalg.norm(good_b - good_a, axis=1)
    if np.median(motion) < 0.05:
        # No camera motion: the identity explains every match; the error is how far points moved anyway.
        errors[consistent] = np.minimum(motion, CAP_PX)
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
    errors[consistent] = np.minimum(sampson_distance(good_a, good_b, fundamental), CAP_PX)
    return float(errors.mean())


def reprojection_errors(frames: np.ndarray, gap: int = 1, stride: int = 2, fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """Pairwise errors for (t, t+gap), t = 0, stride, 2*stride, ..."""
    return np.asarray(
        [pair_error(frames[t], frames[t + gap], fov_deg) for t in range(0, len(frames) - gap, stride)], np.float64
    )


def consistency_3d(frames: np.ndarray, gap: int = 1, stride: int = 2) -> float:
    """clip(1 - mean error / CAP_PX, 0, 1) over a video (T, H, W, 3) uint8."""
    if len(frames) <= gap:
        raise ValueError(f"3D consistency needs more than {gap} frames, got {len(frames)}")
    return float(np.clip(1.0 - reprojection_errors(frames, gap, stride).mean() / CAP_PX, 0.0, 1.0))
