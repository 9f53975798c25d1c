"""Frames of any size and aspect made the model's size: centre-cropped to a square, then resized.

Clips and videos recorded elsewhere come in any size (640x360 Minecraft, 96x72 captures, ...), while the models
and the evaluator's scorers work on size x size frames. Squashing a wide frame into a square would bend every
straight edge and skew the camera's apparent motion (turns would look faster than pitches), so the largest
centred square is kept (a 96x72 frame loses 12 columns on each side) and resized with area averaging. The first
time a shape is fitted, one line on stderr says so; docs/FORMATS.md documents it.
"""

from __future__ import annotations

import sys

import numpy as np

_told: set[tuple[int, int, int]] = set()


def fit_notice(height: int, width: int, size: int) -> str | None:
    """The line that tells what fitting a height x width frame to size x size does, or None if nothing."""
    if (height, width) == (size, size):
        return None
    side = min(height, width)
    crop = f"centre-cropped to {side}x{side}, then " if height != width else ""
    return f"note: {width}x{height} frames are {crop}resized to {size}x{size} (docs/FORMATS.md)"


def tell_once(height: int, width: int, size: int) -> None:
    """Print fit_notice once per shape and size in this process."""
    notice = fit_notice(height, width, size)
    if notice and (height, width, size) not in _told:
        _told.add((height, width, size))
        print(notice, file=sys.stderr)


def centre_square(frames: np.ndarray) -> np.ndarray:
    """The largest centred square of frames (..., H, W, C)."""
    h, w = frames.shape[-3:-1]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return frames[..., top : top + side, left : left + side, :]


def fit_frames(frames: np.ndarray, size: int, tell: bool = True) -> np.ndarray:
    """uint8 (T, H, W, 3) -> (T, size, size, 3): centre square, area-averaged resize; unchanged when already so."""
    import cv2

    frames = np.asarray(frames)
    h, w = frames.shape[1:3]
    if (h, w) == (size, size):
        return frames
    if tell:
        tell_once(h, w, size)
    square = centre_square(frames)
    if square.shape[1] == size:
        return np.ascontiguousarray(square)
    interpolation = cv2.INTER_AREA if square.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(np.ascontiguousarray(f), (size, size), interpolation=interpolation) for f in square])
