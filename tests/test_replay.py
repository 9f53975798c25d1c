"""Replaying recorded clips through the game: the same frames, plus each frame's inverse depth."""

from __future__ import annotations

import numpy as np
import pytest

from data.record import RecordConfig, record
from data.replay import ReplayError, replay_inverse_depth


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec")
    record(RecordConfig(frames=40, clip_frames=20, size=16, seed=3), out, workers=1, progress=False)
    return out


def test_replay_gives_depth_for_every_frame(clips):
    depth = replay_inverse_depth(clips / "clip_000000")
    assert depth.shape == (20, 16, 16) and depth.dtype == np.float32
    assert np.isfinite(depth).all() and depth.min() >= 0 and (depth > 0).any()


def test_a_changed_recording_is_refused(clips):
    path = clips / "clip_000001.frames.npy"
    frames = np.load(path)
    frames[5] = 255 - frames[5]
    np.save(path, frames)
    with pytest.raises(ReplayError, match="frame 5 replays differently"):
        replay_inverse_depth(clips / "clip_000001")
