"""Read clips back: ours (from `worldmodel record`) or mp4 + VPT jsonl pairs recorded elsewhere.

A clip is named by its stem, `DIR/NAME`; its files sit beside it (docs/FORMATS.md):

    ours:       NAME.meta.json (complete only once this exists), NAME.frames.npy, NAME.mp4, NAME.jsonl
    elsewhere:  NAME.mp4 + NAME.jsonl (a VPT recorder action log), nothing else

`read_clip` prefers the lossless frames.npy (memory-mapped) and falls back to decoding the
mp4 with PyAV. Bad input raises `ClipError` naming the file (and the line, for jsonl).
`ClipWindows` is a torch Dataset of fixed-length windows over every clip under a folder;
it memory-maps the frames, so a dataset larger than RAM trains fine.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from data import video as mp4
from data.actions import KEYS, VPT_BUTTONS, VPT_KEYS, Action, from_vpt_line, reject_constant, stack
from data.alignment import check_action_lines
from data.clip_files import CLIP_FORMAT, CLIP_FORMAT_VERSION, CLIP_SUFFIXES
from data.frame_fit import fit_frames

# Our pose fields -> the VPT recorder's (which use Minecraft's yaw and pitch conventions).
POSE_FIELDS: dict[str, str] = {"x": "xpos", "y": "ypos", "z": "zpos", "yaw": "yaw", "pitch": "pitch"}


class ClipError(ValueError):
    """A clip file is missing, incomplete or malformed; the message names the file (and line)."""


@dataclass
class Clip:
    """One clip. frames[t] is shown while actions[t] is pressed; actions[t] makes frames[t + 1]."""

    frames: np.ndarray  # uint8 (T, H, W, 3); a read-only np.memmap when read from frames.npy
    actions: list[Action]  # T actions
    poses: list[dict[str, float]] | None  # T dicts of x, y, z, yaw, pitch, or None when the log has none
    meta: dict[str, Any]  # meta.json for our clips; fps, size and source for clips from elsewhere
    stem: Path  # DIR/NAME, without a suffix

    def __len__(self) -> int:
        return len(self.frames)


def clip_stem(path: str | Path) -> Path:
    """DIR/NAME for any of a clip's files, or for the stem itself."""
    path = Path(path)
    for suffix in CLIP_SUFFIXES:
        if path.name.endswith(suffix):
            return path.with_name(path.name[: -len(suffix)])
    return path


def _file(stem: Path, suffix: str) -> Path:
    return stem.with_name(stem.name + suffix)


def find_clips(root: str | Path) -> list[Path]:
    """Stems of the complete clips under `root` (searched recursively), sorted.

    A clip counts when its meta.json exists (ours) or when an mp4 has a jsonl beside it and
    no frames.npy (recorded elsewhere). Incomplete clips of ours (frames.npy, no meta.json:
    a recording that was killed) are left out with a warning.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of clips")
    stems, incomplete = set(), []
    for meta in root.rglob("*.meta.json"):
        if not meta.name.startswith("."):
            stems.add(clip_stem(meta))
    for video in root.rglob("*.mp4"):
        stem = clip_stem(video)
        if video.name.startswith(".") or stem in stems:
            continue
        if _file(stem, ".frames.npy").exists():
            incomplete.append(stem)
        elif _file(stem, ".jsonl").exists():
            stems.add(stem)
    for frames in root.rglob("*.frames.npy"):
        stem = clip_stem(frames)
        if not frames.name.startswith(".") and stem not in stems and stem not in incomplete:
            incomplete.append(stem)
    if incomplete:
        names = ", ".join(str(s) for s in sorted(incomplete)[:3]) + (", ..." if len(incomplete) > 3 else "")
        warnings.warn(f"skipping {len(incomplete)} incomplete clip(s) with no meta.json under {root}: {names} "
                      "(rerun the same `worldmodel record` command to finish them)", stacklevel=2)
    return sorted(stems)


# --- the pieces of a clip ---------------------------------------------------------------

def _pose(line: dict[str, Any]) -> dict[str, float] | None:
    """Our pose from a line: the exact one under "wm", else the recorder's Minecraft fields."""
    wm = line.get("wm")
    if isinstance(wm, dict):
        pose = wm.get("pose")
        if pose is None:
            return None  # ours without a pose: the top-level fields are placeholders
        if not isinstance(pose, dict) or not set(POSE_FIELDS) <= set(pose):
            raise ValueError(f"wm.pose must hold {', '.join(POSE_FIELDS)}, got {pose!r}")
        return {name: float(pose[name]) for name in POSE_FIELDS}
    if not all(field in line for field in POSE_FIELDS.values()):
        return None
    # Minecraft's yaw is 0 facing south and 90 facing west, ours 0 north and 90 east; its pitch grows downwards.
    mc = {name: float(line[field]) for name, field in POSE_FIELDS.items()}
    return {**mc, "yaw": (mc["yaw"] + 180.0 + 180.0) % 360.0 - 180.0, "pitch": -mc["pitch"] + 0.0}


def _check_ours(line: dict[str, Any], act: Action) -> None:
    """Our recorder writes only keys and buttons it knows, and mouse counts that agree with
    the exact degrees under "wm"; anything else means the file was damaged."""
    by_mouse = from_vpt_line({k: v for k, v in line.items() if k != "wm"})  # checks dx/dy: finite, in range
    if not all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) for a, b in zip(by_mouse.camera, act.camera)):
        raise ValueError(f"mouse.dx/dy give camera {by_mouse.camera} but wm.camera says {act.camera}")
    names = line["keyboard"].get("keys", [])
    unknown = [n for n in names if n not in VPT_KEYS]
    unknown += [f"mouse button {b}" for b in line["mouse"].get("buttons", []) if b not in VPT_BUTTONS]
    wm = line.get("wm")
    if isinstance(wm, dict):
        unknown += [k for k in wm.get("keys", []) if k not in KEYS]
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in a clip of ours (it holds only {', '.join(KEYS)})")


def read_action_log(path: Path, strict: bool = False) -> tuple[list[Action], list[dict[str, float]] | None]:
    """Actions (and poses, when every line has one) from a VPT-recorder-shaped jsonl.

    strict (for our own clips): keys and mouse buttons outside our action space are errors.
    Without it, as for recordings made elsewhere, keys we do not model (e, 1-9, ...) are ignored.
    """
    if not path.is_file():
        raise ClipError(f"{path}: action log missing")
    actions: list[Action] = []
    poses: list[dict[str, float]] | None = []
    with open(path, "rb") as f:  # bytes, decoded line by line: a bad byte is reported with its line
        for lineno, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ClipError(f"{path}:{lineno}: not UTF-8 text ({err.reason} at byte {err.start})") from err
            if not text.strip():
                raise ClipError(f"{path}:{lineno}: empty line (one action line per frame is expected)")
            try:
                line = json.loads(text, parse_constant=reject_constant)
            except json.JSONDecodeError as err:
                raise ClipError(f"{path}:{lineno}: not JSON ({err.msg}, column {err.colno})") from err
            except ValueError as err:
                raise ClipError(f"{path}:{lineno}: {err}") from err
            except RecursionError as err:
                raise ClipError(f"{path}:{lineno}: JSON nested too deeply") from err
            try:
                actions.append(from_vpt_line(line))
                if strict:
                    _check_ours(line, actions[-1])
                pose = _pose(line) if poses is not None else None
            except (ValueError, KeyError, TypeError) as err:
                raise ClipError(f"{path}:{lineno}: {err}") from err
            if pose is not None and not all(math.isfinite(v) for v in pose.values()):
                raise ClipError(f"{path}:{lineno}: pose has a non-finite value {pose}")
            if poses is not None and pose is None:
                poses = None  # a log without a pose on every line has none we can trust
            elif poses is not None:
                poses.append(pose)
    if not actions:
        raise ClipError(f"{path}: action log is empty")
    return actions, poses


def decode_mp4(path: Path) -> tuple[np.ndarray, float | None]:
    """data.video.decode_mp4, its errors reported as the clip's."""
    try:
        return mp4.decode_mp4(path)
    except mp4.VideoError as err:
        raise ClipError(str(err)) from err


def read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ClipError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except ValueError as err:
        raise ClipError(f"{path}: not JSON ({err})") from err
    except RecursionError as err:
        raise ClipError(f"{path}: JSON nested too deeply") from err
    if not isinstance(meta, dict) or meta.get("format") != CLIP_FORMAT:
        raise ClipError(f"{path}: not a {CLIP_FORMAT} metadata file")
    version = meta.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ClipError(f"{path}: field 'format_version' must be a whole number, got {version!r}")
    if version > CLIP_FORMAT_VERSION:
        raise ClipError(f"{path}: clip format version {meta.get('format_version')} is newer than this reader "
                        f"({CLIP_FORMAT_VERSION}); update worldmodel")
    for key in ("frames", "width", "height", "fps"):
        if isinstance(meta.get(key), bool) or not isinstance(meta.get(key), int) or meta[key] < 1:
            raise ClipError(f"{path}: field {key!r} must be a positive integer, got {meta.get(key)!r}")
    return meta


def open_frames_npy(path: Path, meta: dict[str, Any], meta_path: Path) -> np.ndarray:
    """Memory-map frames.npy (reads only its header) and check it against meta.json."""
    try:
        frames = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ClipError(f"{path}: not a readable .npy file ({err})") from err
    want = (meta["frames"], meta["height"], meta["width"], 3)
    if frames.dtype != np.uint8 or frames.shape != want:
        raise ClipError(f"{path}: holds {frames.dtype} {frames.shape}, but {meta_path.name} says uint8 {want}")
    return frames


def _check_lengths(frames_path: Path, frames: int, log_path: Path, actions: int) -> None:
    if actions != frames:
        fewer_or_more = "fewer" if actions < frames else "more"
        raise ClipError(f"{log_path}: {actions} action lines, {fewer_or_more} than the {frames} frames of "
                        f"{frames_path.name} (one line per frame is expected)")


# --- a whole clip -----------------------------------------------------------------------

def read_clip(path: str | Path) -> Clip:
    """Read a clip from any of its files or its stem (see the module docstring)."""
    stem = clip_stem(path)
    meta_path, npy_path = _file(stem, ".meta.json"), _file(stem, ".frames.npy")
    mp4_path, log_path = _file(stem, ".mp4"), _file(stem, ".jsonl")

    if meta_path.is_file():  # ours
        meta = read_meta(meta_path)
        if npy_path.is_file():
            frames, frames_path = open_frames_npy(npy_path, meta, meta_path), npy_path
        else:
            frames, _ = decode_mp4(mp4_path)
            frames_path = mp4_path
            want = (meta["frames"], meta["height"], meta["width"], 3)
            if frames.shape != want:
                raise ClipError(f"{mp4_path}: decodes to {frames.shape}, but {meta_path.name} says {want}")
        actions, poses = read_action_log(log_path, strict=True)
        _check_lengths(frames_path, len(frames), log_path, len(actions))
        return Clip(frames, actions, poses, meta, stem)

    if npy_path.is_file():
        raise ClipError(f"{meta_path}: missing, so the clip is incomplete (a recording was interrupted); "
                        "rerun the same `worldmodel record` command to finish it")
    if not mp4_path.is_file():
        raise ClipError(f"{stem}: no clip here (neither {meta_path.name} nor {mp4_path.name} exists)")
    # Recorded elsewhere: an mp4 and a VPT jsonl, nothing else. The same rule as the evaluator's: one action
    # line per frame at least; lines past the video's end (a recorder that stopped the video first) are ignored.
    frames, fps = decode_mp4(mp4_path)
    actions, poses = read_action_log(log_path)
    try:
        check_action_lines(mp4_path, len(frames), log_path, len(actions))
    except ValueError as err:
        raise ClipError(str(err)) from None
    actions, poses = actions[: len(frames)], poses[: len(frames)] if poses is not None else None
    meta = {"format": "mp4+jsonl", "source": str(mp4_path), "fps": fps, "frames": int(frames.shape[0]),
            "height": int(frames.shape[1]), "width": int(frames.shape[2])}
    return Clip(frames, actions, poses, meta, stem)


# --- the Dataset ------------------------------------------------------------------------

class ClipWindows(Dataset):
    """Fixed-length windows of (frames, actions) over all clips under `root`.

    Item: dict(obs uint8 (T, 3, H, W), keys float32 (T, 9), camera float32 (T, 2) degrees,
    clip str (the stem relative to root), start int). Windows start every `stride` frames
    (default: `length`, no overlap); a clip shorter than `length` gives none. With `size`,
    frames of any other size or aspect are centre-cropped to a square and resized to size x size
    (data.frame_fit, with a one-line notice); without it, all clips must share one size.

    Our clips are memory-mapped (only the window read is loaded); clips recorded elsewhere
    (mp4 only) are decoded once, here, and held in memory.
    """

    def __init__(self, root: str | Path, length: int, stride: int | None = None, size: int | None = None) -> None:
        if length < 1:
            raise ValueError(f"length must be at least 1, got {length}")
        stride = length if stride is None else stride
        if stride < 1:
            raise ValueError(f"stride must be at least 1, got {stride}")
        if size is not None and size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.root, self.length, self.stride, self.size = Path(root), length, stride, size
        self.names: list[str] = []
        self.npy_paths: list[Path | None] = []  # None: frames held in self._decoded
        self._decoded: dict[int, np.ndarray] = {}
        self.keys: list[np.ndarray] = []
        self.camera: list[np.ndarray] = []
        shapes: dict[tuple[int, int], str] = {}
        index: list[tuple[int, int]] = []

        stems = find_clips(self.root)
        if not stems:
            raise ValueError(f"{self.root}: no clips found")
        for i, stem in enumerate(stems):
            npy_path = _file(stem, ".frames.npy")
            meta_path = _file(stem, ".meta.json")
            if npy_path.is_file() and meta_path.is_file():
                # Only the header of frames.npy is read here: the index needs shapes, not pixels.
                meta = read_meta(meta_path)
                frames = open_frames_npy(npy_path, meta, meta_path)
                actions, _ = read_action_log(_file(stem, ".jsonl"), strict=True)
                _check_lengths(npy_path, len(frames), _file(stem, ".jsonl"), len(actions))
                self.npy_paths.append(npy_path)
            else:
                clip = read_clip(stem)
                frames, actions = np.asarray(clip.frames), clip.actions
                if size is not None:  # fitted once here: the decoded frames are held in memory
                    frames = fit_frames(frames, size)
                self._decoded[i] = frames
                self.npy_paths.append(None)
            shapes.setdefault(tuple(frames.shape[1:3]), str(stem))
            keys, camera = stack(actions)
            self.keys.append(keys)
            self.camera.append(camera)
            self.names.append(stem.relative_to(self.root).as_posix())
            index += [(i, start) for start in range(0, len(frames) - length + 1, stride)]
        if size is None and len(shapes) > 1:
            seen = "; ".join(f"{h}x{w} in {name}" for (h, w), name in shapes.items())
            raise ValueError(f"{self.root}: clips of different sizes ({seen}); pass size= to resize them")
        self.index = np.array(index, dtype=np.int64).reshape(-1, 2)
        self._mmaps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps are reopened in each DataLoader worker, never pickled (that would copy the frames).
        state = self.__dict__.copy()
        state["_mmaps"] = {}
        return state

    def clip_frames(self, clip: int) -> np.ndarray:
        """Every frame of clip number `clip` (index into `names`): uint8 (T, H, W, 3) at this dataset's size."""
        frames = self._frames(clip)
        if self.size is not None and frames.shape[1:3] != (self.size, self.size):
            frames = fit_frames(np.asarray(frames), self.size)
        return frames

    def _frames(self, clip: int) -> np.ndarray:
        path = self.npy_paths[clip]
        if path is None:
            return self._decoded[clip]
        if clip not in self._mmaps:
            self._mmaps[clip] = np.load(path, mmap_mode="r", allow_pickle=False)
        return self._mmaps[clip]

    def __getitem__(self, item: int) -> dict[str, Any]:
        if not -len(self) <= item < len(self):
            raise IndexError(f"window {item} out of range for {len(self)} windows")
        clip, start = (int(v) for v in self.index[item])
        stop = start + self.length
        frames = np.array(self._frames(clip)[start:stop])  # (T, H, W, 3), copied out of the map
        if self.size is not None:
            frames = fit_frames(frames, self.size)
        return {
            # Transposed by numpy: torch's uint8 permute-copy took ~20 ms a window here, numpy's well under 1.
            "obs": torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))),  # (T, 3, H, W) uint8
            "keys": torch.from_numpy(self.keys[clip][start:stop].copy()),  # (T, 9)
            "camera": torch.from_numpy(self.camera[clip][start:stop].copy()),  # (T, 2) degrees
            "clip": self.names[clip],
            "start": start,
        }
