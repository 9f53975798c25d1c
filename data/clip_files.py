"""Writing a clip: the files of one recorded or generated play, in the order that makes it safe to stop.

    NAME.frames.npy   uint8 (T, H, W, 3), the lossless training form (recordings only)
    NAME.mp4          the same frames as browser-playable H.264
    NAME.jsonl        one VPT-recorder-shaped action line per frame
    NAME.meta.json    what made the clip: written LAST

Each file is written atomically (data/files.py) and meta.json goes last, so a clip is complete exactly
when its meta.json exists. `worldmodel record` and `worldmodel generate` both write their clips here;
data/clips.py reads them. The format is documented in docs/FORMATS.md.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data.actions import Action, write_actions
from data.files import atomic_path, write_bytes_atomic
from data.video import write_mp4

CLIP_FORMAT = "worldmodel-clip"
CLIP_FORMAT_VERSION = 1
CLIP_SUFFIXES: tuple[str, ...] = (".frames.npy", ".mp4", ".jsonl", ".meta.json")


def versions() -> dict[str, str]:
    """Versions of what made the clip, read without importing torch (4 s here)."""
    found = {"python": platform.python_version(), "numpy": np.__version__}
    for package in ("worldmodel", "torch", "av"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def created_now() -> str:
    """The clip's creation time for meta.json: UTC, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_frames_npy(path: Path, frames: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a name
        np.save(f, np.ascontiguousarray(frames, dtype=np.uint8), allow_pickle=False)


def write_clip(
    out: Path,
    name: str,
    frames: np.ndarray,
    actions: Sequence[Action],
    meta: dict[str, Any],
    *,
    fps: int,
    frames_npy: bool = False,
    video: bool = True,
    poses: Sequence[Any] | None = None,
    extras: Sequence[Any] | None = None,
) -> dict[str, Path]:
    """Write OUT/NAME.* (frames.npy only with `frames_npy`, the mp4 only with `video`), meta.json last; returns the
    paths by suffix. A clip without its mp4 needs its frames.npy: that is what the reader then reads.

    `actions` holds one action per frame (pad the last with a no-op if it made nothing); `meta` is the
    whole of meta.json.
    """
    if len(actions) != len(frames):
        raise ValueError(f"{len(frames)} frames for {len(actions)} actions; a clip has one action line per frame")
    paths = {suffix: out / f"{name}{suffix}" for suffix in CLIP_SUFFIXES}
    if not (video or frames_npy):
        raise ValueError("a clip needs its frames: write the mp4, frames.npy or both")
    if frames_npy:
        # The frames file first: a clip whose mp4 or jsonl exists without meta.json then always
        # has frames.npy too, so the reader calls it incomplete, not a clip recorded elsewhere.
        write_frames_npy(paths[".frames.npy"], frames)
    else:
        del paths[".frames.npy"]
    if video:
        write_mp4(paths[".mp4"], frames, fps=fps)
    else:
        del paths[".mp4"]
    write_actions(paths[".jsonl"], list(actions), poses, extras)
    write_bytes_atomic(paths[".meta.json"], (json.dumps(meta, indent=2) + "\n").encode())
    return paths
