"""The shipped default checkpoint (assets/wm-default) against its targets, on worlds it never trained on:
8-frame rollouts beat copying the last frame, the mouse turns the view and forward walks it (both read back
from the generated frames), a 1,000-frame play is still a world with detail, and the world persists: a full
circle, an out-and-back walk and an A -> B -> C -> A loop come back to what they started from, quantized too.

Slow (loading the real model, recording a few fresh clips, playing 1,000 frames); skipped when assets/wm-default
is not there. The same measures, on more rollouts, are in assets/wm-default/MODEL_CARD.md (eval/measure/).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from worldmodel.paths import DEFAULT_CHECKPOINT

pytestmark = pytest.mark.slow

# Worlds far from the training data's (worldmodel record --seed 0) and the benchmark scenes' (1000-8003);
# the model card's measurement uses the same recording seed with more clips.
UNSEEN_RECORD_SEED = 100_000


@pytest.fixture(scope="module")
def pipe():
    if not (DEFAULT_CHECKPOINT / "config.json").is_file():
        pytest.skip(f"{DEFAULT_CHECKPOINT}: no shipped default checkpoint")
    from worldmodel.pipeline import WorldPipeline

    torch.set_num_threads(1)
    return WorldPipeline.from_pretrained()


def test_shipped_default_loads_with_its_sampling(pipe):
    assert pipe.image_size == 64
    assert 1 <= pipe.sampling.steps <= 4  # at most 4 sampling steps a frame, the target
    assert pipe.dit.cfg.view_fov == 70.0 and pipe.dit.cfg.egomotion  # the base turns with the mouse, steps with the keys
    assert pipe.sampling.memory  # each view starts from the world memory
    assert all(torch.isfinite(p).all() for p in pipe.dit.parameters())


def test_8_frame_rollouts_beat_copying_the_last_frame(pipe, tmp_path, record_property):
    """Fresh recordings of unseen worlds (8 clips x 120 frames, the human-like mixed player), 16 rollouts."""
    from data.record import RecordConfig, record
    from eval.measure.rollout_fidelity import rollout_fidelity

    record(RecordConfig(frames=8 * 120, clip_frames=120, seed=UNSEEN_RECORD_SEED), tmp_path, workers=1, progress=False)
    result = rollout_fidelity(pipe, tmp_path, per_clip=2)
    model_db, copy_db = result["model_psnr"], result["copy_last_psnr"]
    record_property("psnr_model_db", model_db)
    record_property("psnr_copy_last_db", copy_db)
    print(f"16 rollouts on unseen worlds: model {model_db:.2f} dB, copy-last {copy_db:.2f} dB, "
          f"another rollout's actions {result['model_shuffled_actions_psnr']:.2f} dB")
    assert model_db > copy_db
    assert model_db > result["model_shuffled_actions_psnr"] + 0.5  # it follows its own actions
    # Against geometry alone (the last true frame turned and stepped at the simulator's true depth): a tie today
    # (the target of +1 dB is not reached); falling half a dB behind it would be a regression.
    print(f"step_last {result['step_last_psnr']:.2f} dB, turn_last {result['turn_last_psnr']:.2f} dB")
    assert model_db > result["step_last_psnr"] - 0.5
    # Given the 4 frames before the start (a motion context), the model knows how the player was moving, as does
    # step_last given the same actions: both do better, and the model stays ahead of copying.
    print(f"with a motion context: model {result['model_with_context_psnr']:.2f} dB, "
          f"step_last {result['step_last_with_context_psnr']:.2f} dB")
    assert result["model_with_context_psnr"] > result["step_last_with_context_psnr"] - 0.5
    assert result["step_last_with_context_psnr"] > result["step_last_psnr"]


def test_the_shipped_pitch_estimator_reads_where_unseen_worlds_look(pipe, tmp_path):
    """A play starts its walk at the pitch the estimator reads from the start picture (worldmodel.pitch): on fresh
    recordings of unseen worlds it is within a few degrees of the game's."""
    from data.clips import find_clips, read_clip
    from data.record import RecordConfig, record

    assert pipe.pitch is not None
    record(RecordConfig(frames=2 * 200, clip_frames=200, seed=UNSEEN_RECORD_SEED + 7), tmp_path, workers=1, progress=False)
    errors, spread = [], []
    for stem in find_clips(tmp_path):
        clip = read_clip(stem)
        truth = np.array([p["pitch"] for p in clip.poses])
        errors.append(np.abs(pipe.pitch.estimate(np.asarray(clip.frames)) - truth))
        spread.append(np.abs(truth))
    errors, spread = np.concatenate(errors), np.concatenate(spread)
    print(f"pitch error median {np.median(errors):.2f} degrees, mean {errors.mean():.2f}; "
          f"the frames look {np.median(spread):.1f} degrees up or down (median)")
    assert np.median(errors) < 2.0 and errors.mean() < 5.0
    assert np.median(errors) < 0.25 * np.median(spread)  # far better than assuming level


def test_mouse_turns_the_view_and_forward_walks_it(pipe):
    """From 4 benchmark scenes, 8 frames each: yaw read back from the generated frames by eval.pose, and walking
    as the outward (radial) optical flow of the picture, both as from the simulator's own frames."""
    from eval.measure.responsiveness import responsiveness

    r = responsiveness(pipe, n_scenes=4)
    model, truth = r["stats"]["model"], r["stats"]["simulator"]
    print({c: {k: round(v, 3) for k, v in model[c].items()} for c in model})
    for turn, sign in (("yaw_right", 1), ("yaw_left", -1)):
        assert model[turn]["yaw_sign_correct"] == 1.0
        assert 0.5 < sign * model[turn]["yaw_deg_per_frame"] / abs(truth[turn]["yaw_deg_per_frame"]) < 1.5
    forward, still = model["forward"]["radial_px_per_frame"], model["noop"]["radial_px_per_frame"]
    assert forward > still + 0.08  # the view expands when forward is held, and not (as much) when nothing is
    assert forward > 0.35 * truth["forward"]["radial_px_per_frame"]


def test_1000_frame_play_is_still_a_world(pipe, tmp_path):
    from eval.measure.long_play import long_play

    r = long_play(pipe, 1000, tmp_path / "strip.png")
    print({k: r[k] for k in ("first_flat_frame", "pixel_std_last_100", "edge_last_100", "true_edge_mean", "fps")})
    assert r["latents_finite"]
    assert r["first_flat_frame"] is None  # no frame collapses to one flat colour
    # Still pictures with structure, not a wash, all along: the simulator's frames measure about 60 and 16 here.
    stds, edges = [g["model_std"] for g in r["segments"]], [g["model_edge"] for g in r["segments"]]
    assert min(stds) > 8.0 and np.mean(stds) > 20.0 and np.mean(edges) > 3.0
    # Detail in every 100 frames, as the mean of three plays. The aim is 0.7 of the simulator's; the shipped model
    # holds 0.71-1.28 (model card), so this guards the level it has: a network that lets long walks fade into a
    # plain (the memory-base fine-tunes: 0.42-0.46 at worst) fails it.
    assert min(g["edge_ratio"] for g in r["segments"]) >= 0.55
    assert not math.isnan(r["fps"])


@pytest.fixture(scope="module")
def revisits(pipe):
    from eval.measure.revisit import measure_revisits, revisit_scenes

    return measure_revisits(pipe, revisit_scenes()[::2])  # 4 of the 8 biomes


def test_a_full_circle_comes_back_to_the_start(revisits):
    circle = revisits["paths"]["full_circle"]
    print({k: round(v, 2) for k, v in circle.items() if k.endswith("_mean")})
    assert circle["model_mean"] >= 22.0
    assert circle["model_mean"] >= circle["model_away_mean"] + 6.0  # the start, not any view of the scene


def test_walking_out_and_back_and_round_a_loop_come_back_to_the_start(revisits):
    for name in ("out_and_back", "loop"):
        row = revisits["paths"][name]
        print(name, round(row["model_mean"], 2), "simulator", round(row["true_mean"], 2))
        assert row["model_mean"] >= 18.0


@pytest.mark.parametrize("method", ["int8", "lut4"])
def test_the_quantized_model_comes_back_as_the_float_one_does(revisits, method):
    from eval.measure.revisit import measure_revisits, revisit_scenes
    from worldmodel.pipeline import WorldPipeline

    quantized = measure_revisits(WorldPipeline.from_pretrained(quant=method), revisit_scenes()[::2][:2])
    for name, row in quantized["paths"].items():
        float_psnr = float(np.mean(revisits["paths"][name]["model_psnr"][:2]))  # the same two scenes, fp32
        print(name, method, round(row["model_mean"], 2), "fp32", round(float_psnr, 2))
        # No more than 3% worse than fp32 (on two scenes a quantized model can also come out a little better).
        assert row["model_mean"] >= 0.97 * float_psnr
