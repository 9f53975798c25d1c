"""Dense optical flow (OpenCV DIS) and the point matches and camera intrinsics built on it.

Shared by motion smoothness (frame interpolation), 3D consistency (epipolar error) and pose following
(camera rotation). Frames are 64x64, too small for ORB keypoints (a few dozen at best), so matches come
from dense flow on a grid, kept only where the forward and backward flows agree.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import cv2
import numpy as np

FLOW_UPSCALE = 2  # DIS's 8x8 patches need more than 64 pixels a side to find small motions
DEFAULT_FOV_DEG = 70.0  # the renderer's vertical field of view (data/render.py); sprinting widens it a little


def _gray(frame: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if FLOW_UPSCALE > 1:
        gray = cv2.resize(gray, None, fx=FLOW_UPSCALE, fy=FLOW_UPSCALE, interpolation=cv2.INTER_LINEAR)
    return gray


_CACHE: OrderedDict[tuple[bytes, bytes], np.ndarray] = OrderedDict()
CACHE_SIZE = 512  # flows of 64x64 frames are 32 KB each: 16 MB at most


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Flow (H, W, 2) float32 in pixels of the input frames, so that a(p) ~ b(p + flow(p)).

    Memoised on the frames' contents: pose following, 3D consistency and the IDM all ask for the flow
    between the same consecutive frames of a video, and this is where the scorers spend their time.
    """
    key = (hashlib.blake2b(np.ascontiguousarray(a).data, digest_size=16).digest(),
           hashlib.blake2b(np.ascontiguousarray(b).data, digest_size=16).digest())  # fmt: skip
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    flow = _dis_flow(a, b)
    flow.flags.writeable = False
    _CACHE[key] = flow
    if len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return flow


def _dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(_gray(a), _gray(b), None)
    if FLOW_UPSCALE > 1:
        h, w = a.shape[:2]
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA) / FLOW_UPSCALE
    return flow.astype(np.float32)


def warp(frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: out(p) = frame(p + flow(p)), bilinear, borders replicated. float32 output."""
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        frame.astype(np.float32), xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def intrinsics(height: int, width: int, fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """Pinhole camera matrix K for a vertical field of view, square pixels, centre at the image centre."""
    focal = (height / 2) / math.tan(math.radians(fov_deg) / 2)
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], np.float64)


def grid_matches(
    a: np.ndarray, b: np.ndarray, step: int = 4, fb_tol: float = 0.5, margin: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid points of `a`, where they land in `b`, and whether forward and backward flow agree.

    Returns (pts_a (N, 2), pts_b (N, 2), consistent (N,) bool), pixel coordinates (x, y) of pixel centres.
    A point is consistent when it lands inside `b` and the backward flow brings it within `fb_tol` pixels
    of where it started (occluded, ambiguous and garbage matches fail this check).
    """
    h, w = a.shape[:2]
    fwd = dis_flow(a, b)
    bwd = dis_flow(b, a)
    ys, xs = np.mgrid[margin : h - margin : step, margin : w - margin : step]
    pts_a = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    pts_b = pts_a + fwd[ys.ravel(), xs.ravel()]
    inside = (pts_b[:, 0] >= 0) & (pts_b[:, 0] <= w - 1) & (pts_b[:, 1] >= 0) & (pts_b[:, 1] <= h - 1)
    back = cv2.remap(bwd, pts_b[:, 0].reshape(-1, 1), pts_b[:, 1].reshape(-1, 1), cv2.INTER_LINEAR).reshape(-1, 2)
    round_trip = np.linalg.norm(pts_b + back - pts_a, axis=1)
    return pts_a + 0.5, pts_b + 0.5, inside & (round_trip < fb_tol)


def radial_flow(a: np.ndarray, b: np.ndarray) -> float:
    """Mean outward (away from the image centre) component of the flow a -> b, pixels: > 0 when the view expands."""
    flow = dis_flow(a, b)
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    rx, ry = xs + 0.5 - w / 2, ys + 0.5 - h / 2
    r = np.hypot(rx, ry)
    ring = (r > 6) & (r < min(h, w) / 2 - 2)  # away from the crosshair and the borders
    return float(np.mean((flow[..., 0] * rx + flow[..., 1] * ry)[ring] / r[ring]))


def flow_shift_x(a: np.ndarray, b: np.ndarray) -> float:
    """Median horizontal flow (pixels) a -> b over grid points whose forward and backward flows agree (0 if none)."""
    pts_a, pts_b, ok = grid_matches(a, b)
    return float(np.median(pts_b[ok, 0] - pts_a[ok, 0])) if ok.any() else 0.0


def phase_shift_x(a: np.ndarray, b: np.ndarray) -> float:
    """Horizontal shift (pixels) of b relative to a by phase correlation of the grey images."""
    import cv2

    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float32)
    window = cv2.createHanningWindow(ga.shape[::-1], cv2.CV_32F)
    (dx, _dy), _response = cv2.phaseCorrelate(ga, gb, window)
    return float(dx)
