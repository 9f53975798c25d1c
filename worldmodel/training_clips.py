"""The clip folder checked before any training work starts, and read at the model's frame size.

`worldmodel train` reads clips of ours or mp4 + VPT jsonl pairs recorded elsewhere, of any size and aspect:
frames are centre-cropped to a square and resized to the autoencoder's `image_size` (data.frame_fit, one line on
stderr says so). What cannot work is refused here, before the autoencoder stage, with what to do instead:
- no clips in the folder;
- a world model that learns depth (dit.egomotion, the configs default-walk.json and default-memory.json) on clips
  without a world seed: its depth targets come from replaying each clip in the game (data.replay), which only
  clips recorded by `worldmodel record` allow.
Action lines are checked as the evaluator checks them (data.alignment): one line per frame, at least.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from worldmodel.config import TrainConfig


def fitted_windows(root: str, length: int, stride: int, size: int) -> Any:  # a data.clips.ClipWindows
    from data.clips import ClipWindows

    return ClipWindows(root, length=length, stride=stride, size=size)


def _replayable(stem: Path) -> bool:
    """A clip of ours with a world seed and biome in its meta.json (what data.replay needs)."""
    meta_path = stem.with_name(stem.name + ".meta.json")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == "worldmodel-clip" and "seed" in meta and "biome" in meta


def _frame_shape(stem: Path) -> tuple[int, int] | None:
    """(height, width) of a clip recorded elsewhere, from its mp4's header (nothing decoded); None for ours."""
    if stem.with_name(stem.name + ".meta.json").is_file():
        return None
    import av

    try:
        with av.open(str(stem.with_name(stem.name + ".mp4"))) as container:
            stream = container.streams.video[0]
            return int(stream.height), int(stream.width)
    except (av.FFmpegError, IndexError, OSError):
        return None  # read_clip names the broken file when the dataset opens it


def check_training_clips(cfg: TrainConfig) -> list[Path]:
    """Refuse (ValueError) what cannot train, before any work; tell how outside frames will be fitted."""
    from data.clips import find_clips
    from data.frame_fit import tell_once

    stems = find_clips(cfg.data)
    if not stems:
        raise ValueError(f"{cfg.data}: no clips (NAME.meta.json of ours, or NAME.mp4 + NAME.jsonl pairs) under it")
    if cfg.dit.egomotion and "world" in cfg.stages:
        without = [s for s in stems if not _replayable(s)]
        if without:
            names = ", ".join(s.name for s in without[:3]) + (", ..." if len(without) > 3 else "")
            raise ValueError(
                f"{cfg.data}: {len(without)} of {len(stems)} clips have no world seed ({names}), but this config's "
                "world model learns depth by replaying every clip in the game (dit.egomotion); train them with a "
                "config without egomotion (worldmodel/configs/default.json), or use clips made by `worldmodel record`"
            )
    size = cfg.autoencoder.image_size
    for stem in stems:
        shape = _frame_shape(stem)
        if shape is not None:
            tell_once(*shape, size)
    return stems


def checked_windows(cfg: TrainConfig):  # a train.WindowsFactory
    """The clip folder checked (check_training_clips), as a factory of windows at the model's frame size."""
    check_training_clips(cfg)
    return functools.partial(fitted_windows, size=cfg.autoencoder.image_size)
