"""The pitch estimator: reading a start picture's pitch, the walk starting there, and its training stage."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from data.actions import Action
from worldmodel.autoencoder import FrameAutoencoder
from worldmodel.config import PRESETS, PitchConfig, SamplingConfig, TrainConfig
from worldmodel.dit import CausalDiT
from worldmodel.pipeline import WorldPipeline
from worldmodel.pitch import PitchEstimator
from worldmodel.session import Session
from worldmodel.train import run

torch.set_num_threads(1)
AE_CFG, DIT_CFG = PRESETS["wm-tiny"]
WALK_CFG = dataclasses.replace(DIT_CFG, view_fov=70.0, egomotion=True, depth_channels=8)


def frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


def reading(degrees: float) -> PitchEstimator:
    """An estimator that reads `degrees` from any picture: its last layer is only a bias."""
    estimator = PitchEstimator(PitchConfig(image_size=16))
    with torch.no_grad():
        estimator.head[-1].weight.zero_()
        estimator.head[-1].bias.fill_(2 * math.atanh(degrees / 89.0))
    return estimator.eval()


def test_the_estimator_reads_a_pitch_per_frame_and_round_trips(tmp_path):
    torch.manual_seed(0)
    estimator = PitchEstimator(PitchConfig(image_size=16)).eval()
    degrees = estimator.estimate(frames(3))
    assert degrees.shape == (3,) and degrees.dtype == np.float32 and np.all(np.abs(degrees) <= 89.0)
    estimator.save_pretrained(tmp_path / "pitch")
    np.testing.assert_array_equal(PitchEstimator.from_pretrained(tmp_path / "pitch").estimate(frames(3)), degrees)
    with pytest.raises(ValueError, match=r"reads uint8 \(B, 16, 16, 3\) frames"):
        estimator.estimate(frames(1)[0])
    with pytest.raises(ValueError, match="multiple of 16"):
        PitchConfig(image_size=24)


def test_a_play_starts_its_walk_at_the_pitch_read_from_the_image():
    torch.manual_seed(0)
    ae, dit = FrameAutoencoder(AE_CFG).eval(), CausalDiT(WALK_CFG).eval()
    sampling = SamplingConfig(steps=1, memory=True)
    level = Session(dit, ae, sampling)
    level.start(frames(1)[0])
    assert level.walks[0].pitch == 0.0  # no estimator: level, as before
    looking_down = Session(dit, ae, sampling, pitch=reading(-30.0))
    looking_down.start(frames(1)[0])
    assert looking_down.walks[0].pitch == pytest.approx(-30.0, abs=1e-3)
    # With a motion context the walk starts earlier, where the mouse then moved it to the image's pitch.
    up = Action(frozenset(), (5.0, 0.0))
    context = Session(dit, ae, sampling, pitch=reading(-30.0))
    context.start(frames(1)[0], context=(frames(2, seed=1), [up, up]))
    assert context.walks[0].pitch == pytest.approx(-30.0, abs=1e-3)
    assert context.step(up).shape == (16, 16, 3) and context.walks[0].pitch == pytest.approx(-25.0, abs=1e-3)


def test_a_pipeline_saves_and_loads_its_estimator_and_refuses_one_of_another_size(tmp_path):
    ae, dit = FrameAutoencoder(AE_CFG).eval(), CausalDiT(WALK_CFG).eval()
    pipe = WorldPipeline(ae, dit, SamplingConfig(steps=1, memory=True), pitch=reading(20.0))
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = WorldPipeline.from_pretrained(tmp_path / "pipe")
    session = loaded.new_session()
    session.start(frames(1)[0])
    assert session.walks[0].pitch == pytest.approx(20.0, abs=1e-3)
    with pytest.raises(ValueError, match="reads 64px frames, the model makes 16px ones"):
        WorldPipeline(ae, dit, pitch=PitchEstimator(PitchConfig()))


def test_the_pitch_stage_learns_from_recorded_clips_and_adds_the_estimator_to_a_pipeline(tmp_path):
    from data.record import RecordConfig, record

    record(RecordConfig(frames=200, clip_frames=20, size=16, seed=3), tmp_path / "clips", workers=1, progress=False)
    start = tmp_path / "start"
    WorldPipeline(FrameAutoencoder(AE_CFG), CausalDiT(WALK_CFG), SamplingConfig(memory=True)).save_pretrained(start)
    cfg = TrainConfig(data=str(tmp_path / "clips"), stages=("pitch",), init_from=str(start), autoencoder=AE_CFG,
                      dit=WALK_CFG, pitch=PitchConfig(image_size=16), pitch_steps=150, pitch_batch_size=32,
                      log_every=10, ckpt_every=100)
    out = tmp_path / "run"
    assert run(cfg, out) is None
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])  # it learns
    final = rows[-1]
    assert final["step"] == 150 and np.isfinite(final["median_abs_error"])  # measured on the held-out clip
    pipe = WorldPipeline.from_pretrained(out / "pipeline")
    assert pipe.pitch is not None and (out / "ckpt_pitch" / "state.json").is_file()
    with pytest.raises(ValueError, match="pitch.image_size \\(64\\) must be the autoencoder's \\(16\\)"):
        dataclasses.replace(cfg, pitch=PitchConfig())


def test_the_pitch_stage_refuses_clips_without_poses(tmp_path):
    from data.record import RecordConfig, record

    record(RecordConfig(frames=20, clip_frames=20, size=16, seed=3), tmp_path / "clips", workers=1, progress=False)
    for log in (tmp_path / "clips").rglob("*.jsonl"):
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        for line in lines:
            line["wm"]["pose"] = None
        log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    cfg = TrainConfig(data=str(tmp_path / "clips"), stages=("pitch",), autoencoder=AE_CFG, dit=WALK_CFG,
                      pitch=PitchConfig(image_size=16), pitch_steps=2)
    with pytest.raises(ValueError, match="no camera poses in its action log"):
        run(cfg, tmp_path / "run")
