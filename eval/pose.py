"""Pose following: does the camera in the generated video turn the way the true camera turned?

What it measures (only possible because we own the simulator): we recover the camera's turn between
consecutive frames from the pictures alone, chain the turns into a yaw/pitch path, and compare it with the
true path, the simulator's recorded poses for the same start scene and actions (or, for videos without
poses, the camera deltas of the action file, pitch clamped to +-90 deg like the player's). The video is cut
into windows of WINDOW frames after the first, and within each both paths start again from zero: error = mean
over frames of the angular distance between the two paths since their window's start (degrees). Score =
clip(1 - error / CAP_DEG, 0, 1). Why windows: a path chained over a whole video keeps every misread step for
ever, so its error grows with the length, and at 65 frames the truth's own (60 degrees) saturated the score
just as a frozen video's did (the full suite's calibration caught it). Over windows the error is the same kind
of number at any length: a 17-frame video is one window, a 65-frame one four.

How the turn is recovered: grid points matched by dense DIS flow (forward/backward-consistent ones only),
lifted to unit bearing vectors with the renderer's intrinsics, and the rotation that best maps one set onto
the other (Kabsch / orthogonal Procrustes, refit once on the best 80 % to shed moving-object and parallax
outliers). Walking adds parallax that a rotation cannot explain (a strafe alone read as a ~10 degree drift):
where the rotation-only fit leaves a median residual above PARALLAX_PX, the rotation comes from the essential
matrix instead (findEssentialMat + recoverPose), which separates it from the translation, unless the two
disagree by more than AGREE_DEG (a near-pure turn makes the essential matrix degenerate). On true videos the
path error is about 1-5 degrees over 16 frames; more when the view is mostly sky. Views of the plain
sky hold no matches, so turns while looking straight up are unknown (counted as no turn): even the true video
loses points there. There is no counterpart in GameWorld Score.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from eval.flow import DEFAULT_FOV_DEG, grid_matches, intrinsics

CAP_DEG = 30.0
WINDOW = 16  # frames: a path is compared from the start of each window of this many steps
MIN_MATCHES = 8
PARALLAX_PX = 0.5  # median residual (px) of the rotation-only fit above which the camera is taken to translate
AGREE_DEG = 3.0  # the essential matrix's rotation is used only this close to the rotation-only fit
SCORER_NAME = "flow bearings + Kabsch rotation vs simulator poses, 16-frame windows, 1 - err/30deg"


def _bearings(pts: np.ndarray, k_inv: np.ndarray) -> np.ndarray:
    rays = np.hstack([pts, np.ones((len(pts), 1))]) @ k_inv.T
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def _kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation R (3, 3) minimising sum |b_i - R a_i|^2."""
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def camera_turn(a: np.ndarray, b: np.ndarray, fov_deg: float = DEFAULT_FOV_DEG) -> tuple[float, float]:
    """(pitch, yaw) change in degrees from frame a to frame b (up is +pitch, right is +yaw); NaN if unknown."""
    h, w = a.shape[:2]
    pts_a, pts_b, ok = grid_matches(a, b)
    if ok.sum() < MIN_MATCHES:
        return math.nan, math.nan
    k = intrinsics(h, w, fov_deg)
    k_inv = np.linalg.inv(k)
    good_a, good_b = pts_a[ok].astype(np.float64), pts_b[ok].astype(np.float64)
    va, vb = _bearings(good_a, k_inv), _bearings(good_b, k_inv)
    rot = _kabsch(va, vb)
    residual = np.linalg.norm(vb - va @ rot.T, axis=1)
    keep = residual <= np.quantile(residual, 0.8)
    if keep.sum() >= MIN_MATCHES:
        rot = _kabsch(va[keep], vb[keep])
    # A turn alone moves every point as the rotation says; walking adds parallax that it cannot explain.
    # Where it leaves more than PARALLAX_PX, separate rotation from translation with the essential matrix,
    # but only trust that when it stays within AGREE_DEG of the rotation-only fit: with a 70 degree view a
    # near-pure turn makes the essential matrix degenerate, and its rotation can then be anything.
    pitch, yaw = _angles(rot)
    projected = (va @ rot.T) @ k.T
    pixel_residual = np.linalg.norm(projected[:, :2] / projected[:, 2:] - good_b, axis=1)
    if np.median(pixel_residual) > PARALLAX_PX:
        essential, inliers = cv2.findEssentialMat(good_a, good_b, k, method=cv2.RANSAC, prob=0.999, threshold=0.5)
        if essential is not None and essential.shape == (3, 3):
            _, rot_e, _, _ = cv2.recoverPose(essential, good_a, good_b, k, mask=inliers)
            pitch_e, yaw_e = _angles(rot_e)
            if math.hypot(pitch_e - pitch, yaw_e - yaw) < AGREE_DEG:
                pitch, yaw = pitch_e, yaw_e
    return pitch, yaw


def _angles(rot: np.ndarray) -> tuple[float, float]:
    """(pitch, yaw) degrees of a camera rotation R (new bearings = R @ old bearings)."""
    # Where the old viewing direction shows up in the new camera (x right, y down, z forward):
    # turning right moves it left (x < 0), looking up moves it down (y > 0).
    old_forward = rot @ np.array([0.0, 0.0, 1.0])
    yaw = -math.degrees(math.atan2(old_forward[0], old_forward[2]))
    pitch = math.degrees(math.atan2(old_forward[1], math.hypot(old_forward[0], old_forward[2])))
    return pitch, yaw


def recovered_steps(frames: np.ndarray, fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """(T, 2) the camera's (pitch, yaw) turn into each frame in degrees (row 0 zero), NaN where unknown."""
    steps = np.zeros((len(frames), 2))
    for t in range(1, len(frames)):
        steps[t] = camera_turn(frames[t - 1], frames[t], fov_deg)
    return steps


def recovered_path(frames: np.ndarray, fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """(T, 2) cumulative (pitch, yaw) in degrees from frame 0; unknown steps count as no turn."""
    return np.cumsum(np.nan_to_num(recovered_steps(frames, fov_deg), nan=0.0), axis=0)


def true_path_from_poses(poses: list[dict[str, float]]) -> np.ndarray:
    """(T, 2) (pitch, yaw) relative to the first pose, yaw unwrapped."""
    pitch = np.array([p["pitch"] for p in poses], np.float64)
    yaw = np.degrees(np.unwrap(np.radians([p["yaw"] for p in poses])))
    return np.stack([pitch - pitch[0], yaw - yaw[0]], 1)


def true_path_from_camera(camera: np.ndarray, start_pitch: float = 0.0) -> np.ndarray:
    """(T+1, 2) path from per-frame camera deltas (T, 2), pitch clamped to +-90 deg like the player's."""
    path = np.zeros((len(camera) + 1, 2))
    pitch = start_pitch
    for t, (dp, dy) in enumerate(np.asarray(camera, np.float64)):
        pitch = min(90.0, max(-90.0, pitch + dp))
        path[t + 1] = (pitch - start_pitch, path[t, 1] + dy)
    return path


def path_error(recovered: np.ndarray, true: np.ndarray, window: int = WINDOW) -> float:
    """Mean angular distance (degrees) between two (T, 2) paths of the same length over frames 1 .. T - 1, each
    path measured from the start of the frame's window (frames 0, window, 2 window, ...)."""
    if recovered.shape != true.shape:
        raise ValueError(f"paths differ in shape: recovered {recovered.shape}, true {true.shape}")
    if len(true) < 2:
        raise ValueError("a path needs at least two frames")
    frames = np.arange(1, len(true))
    starts = (frames - 1) // window * window
    apart = (recovered[frames] - recovered[starts]) - (true[frames] - true[starts])
    return float(np.mean(np.linalg.norm(apart, axis=1)))


def score_steps(steps: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """(score in [0, 1], error in degrees) of recovered per-frame turns (T, 2; NaN: unknown, taken as no turn)
    against the true (>= T, 2) path."""
    err = path_error(np.cumsum(np.nan_to_num(steps, nan=0.0), axis=0), true[: len(steps)])
    return float(np.clip(1.0 - err / CAP_DEG, 0.0, 1.0)), err


def pose_following(frames: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """(score in [0, 1], error in degrees) of a video (T, H, W, 3) against the true (T, 2) path."""
    return score_steps(recovered_steps(frames), true)
