"""The held-out reconstruction measure (eval/measure/reconstruction.py) on a tiny recording."""

from __future__ import annotations

import numpy as np
import pytest

from data.record import RecordConfig, record
from eval.measure.reconstruction import held_out_frames, reconstruction
from worldmodel.autoencoder import FrameAutoencoder
from worldmodel.config import PRESETS, AutoencoderConfig


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    record(RecordConfig(frames=40, clip_frames=20, size=16, seed=5), root, workers=1, progress=False)
    return root


def test_frames_are_spread_over_every_clip(clips):
    frames = held_out_frames(clips, 10)
    assert frames.shape == (10, 16, 16, 3) and frames.dtype == np.uint8
    assert len({f.tobytes() for f in frames}) > 5  # not one frame repeated


def test_a_folder_without_clips_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no clips"):
        held_out_frames(tmp_path, 4)


def test_a_perfect_autoencoder_scores_the_cap_and_an_untrained_one_does_not(clips):
    frames = held_out_frames(clips, 8)
    identity = FrameAutoencoder(AutoencoderConfig(kind="pixels", image_size=16, latent_channels=3, downsample=1,
                                                  encoder_blocks=(0,), decoder_blocks=(0,)))
    assert reconstruction(identity, frames) == {"frames": 8, "psnr": 60.0, "ssim": pytest.approx(1.0)}
    untrained = FrameAutoencoder(PRESETS["wm-tiny"][0])
    r = reconstruction(untrained, frames)
    assert r["frames"] == 8 and 0 < r["psnr"] < 20
