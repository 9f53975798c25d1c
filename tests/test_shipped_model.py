"""The shipped default checkpoint (assets/wm-default): it loads, plays without blowing up, and predicts the
simulator's next frames on worlds it never trained on at least as well as it did when it was shipped.

Slow (a few seconds each, loading the real model); skipped when assets/wm-default is not there.
The measured figures these floors come from: assets/wm-default/MODEL_CARD.md.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data.actions import Action
from worldmodel.paths import DEFAULT_CHECKPOINT

pytestmark = pytest.mark.slow

HORIZON = 8
# Floors about 1 dB below what the shipped model measured here (model 17.34 dB, copy-last 22.34 dB on these 16
# starts, at shipping), so a broken export or sampler fails. The model does NOT beat copy-last on these
# mostly-still scripted starts; on recorded play it is close to it (MODEL_CARD.md).
MODEL_PSNR_FLOOR_DB = 16.0
MAX_DB_BELOW_COPY_LAST = 6.0
# Seeds far from the training data's (worldmodel record --seed 0 derives 32-bit world seeds from it) and from
# the 32 benchmark scenes (1000-8003).
UNSEEN_SEEDS = (424242, 515151)
BIOMES = ("beach", "desert", "forest", "hills", "icy", "mushroom", "plain", "river")
PATTERNS = (
    [Action(frozenset({"forward"}))] * HORIZON,
    [Action(camera=(0.0, 6.0))] * HORIZON,
    [Action(frozenset({"forward"}), (0.0, -4.0))] * HORIZON,
    [Action()] * (HORIZON // 2) + [Action(frozenset({"left"}))] * (HORIZON // 2),
)


@pytest.fixture(scope="module")
def pipe():
    if not (DEFAULT_CHECKPOINT / "config.json").is_file():
        pytest.skip(f"{DEFAULT_CHECKPOINT}: no shipped default checkpoint")
    from worldmodel.pipeline import WorldPipeline

    torch.set_num_threads(1)
    return WorldPipeline.from_pretrained()


@pytest.fixture(scope="module")
def unseen_rollouts(pipe):
    """16 starts on unseen worlds (8 biomes x 2 seeds) with scripted actions: (model, truth), each (B, T + 1, H, W, 3)."""
    from data.game import Game

    starts, actions, truths = [], [], []
    for i, (seed, biome) in enumerate((s, b) for s in UNSEEN_SEEDS for b in BIOMES):
        game = Game(seed, biome, size=pipe.image_size)
        acts = PATTERNS[i % len(PATTERNS)]
        frames = [game.reset()] + [game.step(a) for a in acts]
        starts.append(frames[0])
        actions.append(acts)
        truths.append(np.stack(frames))
    session = pipe.new_session(seed=0)
    model = [session.start(np.stack(starts))]
    for t in range(HORIZON):
        model.append(session.step([a[t] for a in actions]))
    return np.stack(model, axis=1), np.stack(truths)


def test_shipped_default_loads_with_shipped_sampling(pipe):
    assert pipe.image_size == 64
    assert pipe.sampling.steps == 2 and pipe.sampling.guidance == 3.0 and pipe.sampling.context_sigma == 0.25
    assert all(torch.isfinite(p).all() for p in pipe.dit.parameters())


def test_16_frame_rollout_is_finite_and_not_flat(pipe):
    from data.game import Game

    start = Game(UNSEEN_SEEDS[0], "forest", size=pipe.image_size).reset()
    session = pipe.new_session(seed=0)
    session.start(start)
    acts = [Action(frozenset({"forward"}))] * 6 + [Action(camera=(0.0, 8.0))] * 5 + [Action(frozenset({"jump"}))] * 5
    for t, act in enumerate(acts):
        frame = session.step(act)
        assert torch.isfinite(session.pending.x).all(), f"frame {t + 1}: non-finite latents"
        std = frame.reshape(-1, 3).std(axis=0).mean()
        assert std > 5.0, f"frame {t + 1}: flat picture (pixel std {std:.2f})"
        assert 10.0 < frame.mean() < 245.0, f"frame {t + 1}: washed out (mean {frame.mean():.1f})"


def _mean_psnr(videos: np.ndarray, truth: np.ndarray) -> float:
    from eval.fidelity import psnr

    return float(np.mean([psnr(v, g) for vs, gs in zip(videos, truth) for v, g in zip(vs[1:], gs[1:])]))


def test_8_frame_rollouts_on_unseen_worlds(pipe, unseen_rollouts, record_property):
    model, truth = unseen_rollouts
    copy_last = np.repeat(truth[:, :1], HORIZON + 1, axis=1)
    model_db, copy_db = _mean_psnr(model, truth), _mean_psnr(copy_last, truth)
    record_property("psnr_model_db", model_db)
    record_property("psnr_copy_last_db", copy_db)
    print(f"8-frame rollouts on 16 unseen worlds: model {model_db:.2f} dB, copy-last {copy_db:.2f} dB")
    assert model_db > MODEL_PSNR_FLOOR_DB
    assert model_db > copy_db - MAX_DB_BELOW_COPY_LAST

