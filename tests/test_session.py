"""Streaming sessions: cached == uncached, flat cost, batching, determinism, input checks."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch

from data.actions import NOOP, Action
from worldmodel.autoencoder import FrameAutoencoder, to_model_range
from worldmodel.config import PRESETS, SamplingConfig
from worldmodel.dit import CausalDiT
from worldmodel.schedule import move_view, turn_view
from worldmodel.session import Session, step_together

torch.set_num_threads(1)
AE_CFG, DIT_CFG = PRESETS["wm-tiny"]
ACTIONS = [Action(frozenset({"forward"}), (1.0, -3.0)), NOOP, Action(frozenset({"left", "jump"}), (0.0, 5.0))]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    ae = FrameAutoencoder(AE_CFG).eval()
    dit = CausalDiT(DIT_CFG).eval()
    with torch.no_grad():  # perturb the zero-initialised layers so the frames depend on everything
        for p in dit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return ae, dit


def image(seed: int = 0, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def play(session: Session, start: np.ndarray, actions: list[Action]) -> tuple[np.ndarray, list[torch.Tensor]]:
    frames, latents = [session.start(start)], []
    for act in actions:
        frames.append(session.step(act))
        latents.append(session.pending.x.clone())
    return np.stack(frames), latents


def test_cached_and_uncached_generation_are_identical(models):
    ae, dit = models
    sampling = SamplingConfig(steps=3, context_sigma=0.1)
    acts = ACTIONS * 3  # 9 frames: three times the attention window
    f1, z1 = play(Session(dit, ae, sampling, seed=1, use_cache=True), image(), acts)
    f2, z2 = play(Session(dit, ae, sampling, seed=1, use_cache=False), image(), acts)
    for a, b in zip(z1, z2):
        assert torch.allclose(a, b, atol=1e-4)
    assert np.abs(f1.astype(int) - f2.astype(int)).max() <= 1


def test_turned_base_cached_equals_uncached_and_an_untrained_model_turns_by_geometry(models):
    ae, dit = models
    turning = CausalDiT(dataclasses.replace(DIT_CFG, view_fov=70.0)).eval()
    turning.load_state_dict(dit.state_dict())
    sampling = SamplingConfig(steps=2, context_sigma=0.1, guidance=2.0)
    f1, z1 = play(Session(turning, ae, sampling, seed=1, use_cache=True), image(), ACTIONS * 2)
    f2, z2 = play(Session(turning, ae, sampling, seed=1, use_cache=False), image(), ACTIONS * 2)
    for a, b in zip(z1, z2):
        assert torch.allclose(a, b, atol=1e-4)
    # A zero-initialised network predicts no change, so the next frame is the start frame turned by the mouse.
    blank = CausalDiT(dataclasses.replace(DIT_CFG, view_fov=70.0)).eval()
    session = Session(blank, ae, SamplingConfig(steps=1, context_sigma=0.0), seed=0)
    session.start(image())
    start = session.pending.x.clone()
    session.step(Action(camera=(0.0, 20.0)))
    assert torch.allclose(session.pending.x, turn_view(start, torch.tensor([[0.0, 20.0]]), 70.0), atol=1e-5)
    assert not torch.allclose(session.pending.x, start, atol=1e-3)


def test_seed_gives_the_same_play_and_another_seed_another(models):
    ae, dit = models
    sampling = SamplingConfig(steps=2)
    a, _ = play(Session(dit, ae, sampling, seed=3), image(), ACTIONS)
    b, _ = play(Session(dit, ae, sampling, seed=3), image(), ACTIONS)
    c, _ = play(Session(dit, ae, sampling, seed=4), image(), ACTIONS)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batch_of_sessions(models):
    ae, dit = models
    s = Session(dit, ae, SamplingConfig(steps=2), seed=0)
    starts = np.stack([image(0), image(1)])
    first = s.start(starts)
    assert first.shape == (2, 16, 16, 3) and first.dtype == np.uint8
    out = s.step([ACTIONS[0], ACTIONS[2]])
    assert out.shape == (2, 16, 16, 3)
    assert s.step(NOOP).shape == (2, 16, 16, 3)  # one action for all
    with pytest.raises(ValueError, match="3 actions for a batch of 2"):
        s.step([NOOP] * 3)


def test_guidance_runs_and_changes_frames(models):
    ae, dit = models
    plain, _ = play(Session(dit, ae, SamplingConfig(steps=2), seed=0), image(), ACTIONS)
    guided, _ = play(Session(dit, ae, SamplingConfig(steps=2, guidance=3.0), seed=0), image(), ACTIONS)
    assert guided.shape == plain.shape and not np.array_equal(guided, plain)


def test_bad_input_errors(models):
    ae, dit = models
    s = Session(dit, ae, SamplingConfig(), seed=0)
    with pytest.raises(RuntimeError, match="start"):
        s.step(NOOP)
    with pytest.raises(ValueError, match="uint8"):
        s.start(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="16x16"):
        s.start(np.zeros((32, 32, 3), np.uint8))


def test_cost_per_frame_stays_flat(models):
    ae, dit = models
    s = Session(dit, ae, SamplingConfig(steps=2), seed=0)
    s.start(image())

    def timed(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            s.step(NOOP)
        return (time.perf_counter() - t) / n

    for _ in range(5):
        s.step(NOOP)
    early = min(timed(10) for _ in range(3))
    for _ in range(250):
        s.step(NOOP)
    late = min(timed(10) for _ in range(3))
    assert late < 2.0 * early, (early, late)  # generous: the machine is shared
    assert len(s.cache) == DIT_CFG.window - 1
    frame = s.step(NOOP)
    assert frame.shape == (16, 16, 3)


def test_walking_base_cached_equals_uncached_and_an_untrained_model_steps_by_geometry(models):
    ae, dit = models
    cfg = dataclasses.replace(DIT_CFG, view_fov=70.0, egomotion=True, depth_channels=8)
    walking = CausalDiT(cfg).eval()
    walking.load_state_dict({**walking.state_dict(), **dit.state_dict()})
    sampling = SamplingConfig(steps=2, context_sigma=0.1, guidance=2.0)
    acts = [Action({"forward"})] * 3 + ACTIONS * 2
    f1, z1 = play(Session(walking, ae, sampling, seed=1, use_cache=True), image(), acts)
    f2, z2 = play(Session(walking, ae, sampling, seed=1, use_cache=False), image(), acts)
    for a, b in zip(z1, z2):
        assert torch.allclose(a, b, atol=1e-4)
    # A zero-initialised network predicts no change: the next frame is the start frame stepped forward at the
    # depth head's estimate (made near here, so the step shows), by the walking physics' first step.
    blank = CausalDiT(cfg).eval()
    torch.nn.init.constant_(blank.depth.net[-1].bias, 2.0)
    session = Session(blank, ae, SamplingConfig(steps=1, context_sigma=0.0), seed=0)
    session.start(image())
    start = session.pending.x.clone()
    session.step(Action({"forward"}))
    depth = blank.depth(start, torch.zeros(1))
    step = torch.tensor([[0.0, 0.0, 0.098, 1.0]])  # 0.98 input x 0.1 acceleration
    assert torch.allclose(session.pending.x, move_view(start, torch.zeros(1, 2), 70.0, depth, step), atol=1e-5)
    assert not torch.allclose(session.pending.x, start, atol=1e-3)


@pytest.fixture(scope="module")
def walking_dit(models):
    _, dit = models
    cfg = dataclasses.replace(DIT_CFG, view_fov=70.0, egomotion=True, depth_channels=8)
    walking = CausalDiT(cfg).eval()
    walking.load_state_dict({**walking.state_dict(), **dit.state_dict()})
    return walking


def test_world_memory_brings_back_the_start_after_a_full_circle(models, walking_dit):
    ae, _ = models
    sampling = SamplingConfig(steps=2, memory=True)
    start = image(size=16)
    session = Session(walking_dit, ae, sampling, seed=0)
    assert (session.start(start) == start).all()  # the start picture itself, kept in the memory
    turn = Action(camera=(0.0, 30.0))
    frames = [session.step(turn) for _ in range(12)]
    screen = session.overlay  # the arm and crosshair: drawn by the network, not remembered
    np.testing.assert_array_equal(frames[-1][~screen], start[~screen])
    assert not (frames[5][~screen] == start[~screen]).all()  # facing away it is another view
    # Memory or not, the context and the cache behave the same: cached == uncached.
    f1, z1 = play(Session(walking_dit, ae, sampling, seed=1, use_cache=True), start, ACTIONS * 2)
    f2, z2 = play(Session(walking_dit, ae, sampling, seed=1, use_cache=False), start, ACTIONS * 2)
    for a, b in zip(z1, z2):
        assert torch.allclose(a, b, atol=1e-4)
    # The same frames, up to float rounding: a pixel on a half level may round the other way.
    differ = np.abs(np.asarray(f1, np.int16) - np.asarray(f2, np.int16))
    assert differ.max() <= 1 and (differ > 0).mean() < 1e-3


def test_world_memory_stays_bounded_in_a_long_play(models, walking_dit):
    ae, _ = models
    session = Session(walking_dit, ae, SamplingConfig(steps=1, memory=True, memory_points=4 * 16 * 16), seed=0)
    session.start(image(size=16))
    acts = [Action({"forward"}, (0.0, 7.0)), Action({"left", "jump"}, (2.0, -3.0)), Action({"attack"})]
    for t in range(150):
        session.step(acts[t % 3])
        assert len(session.memories[0]) <= 4 * 16 * 16


def test_world_memory_needs_the_depth_head(models):
    ae, dit = models
    with pytest.raises(ValueError, match="egomotion"):
        Session(dit, ae, SamplingConfig(memory=True))


def test_attack_drops_the_memory_under_the_crosshair(models, walking_dit):
    ae, _ = models
    near = CausalDiT(walking_dit.cfg).eval()
    near.load_state_dict(walking_dit.state_dict())
    with torch.no_grad():  # the depth head reads everything as half a block away: within reach
        near.depth.net[-1].weight.zero_()
        near.depth.net[-1].bias.fill_(2.0)
    session = Session(near, ae, SamplingConfig(steps=1, memory=True), seed=0)
    session.start(image(size=16))
    memory = session.memories[0]
    dropped = []
    forget = memory.forget
    memory.forget = lambda *a, **k: dropped.append(forget(*a, **k)) or dropped[-1]
    session.step(NOOP)
    assert dropped == []  # nothing happens to the world without attack or use
    session.step(Action({"attack"}))
    assert len(dropped) == 1 and dropped[0] > 0


def test_observe_takes_in_known_frames_and_gives_the_memory_base(models, walking_dit):
    ae, _ = models
    start = image(size=16)
    session = Session(walking_dit, ae, SamplingConfig(steps=1, memory=True), seed=0)
    session.start(start)
    # Standing still, the memory shows the start picture again: it covers the view outside the arm and crosshair.
    remembered, covered = session.observe(NOOP, start)
    assert remembered.shape == (1, 4, 4, 4) and covered.shape == (1, 4, 4)
    assert float(covered.mean()) > 0.6
    assert torch.allclose(remembered, ae.encode(to_model_range(torch.from_numpy(start).permute(2, 0, 1)[None])), atol=0.2)
    # Turned right by 30°, a third of the view is new: less is covered, and the known frame is what is shown next.
    turned = np.roll(start, -5, axis=1)
    _, covered_turned = session.observe(Action(camera=(0.0, 30.0)), turned)
    assert float(covered_turned.mean()) < float(covered.mean())
    np.testing.assert_array_equal(session.shown[0], turned)
    assert session.pos == 2


@pytest.mark.parametrize("memory", [False, True])
def test_sessions_stepped_together_make_the_frames_they_make_alone(models, walking_dit, memory):
    ae, _ = models
    sampling = SamplingConfig(steps=2, context_sigma=0.1, memory=memory)
    # Three plays started at different times (frames 0, 2 and 5 by the time they join), one of them a batch of two.
    starts = [image(1, 16), np.stack([image(2, 16), image(3, 16)]), image(4, 16)]
    ahead = [6, 4, 1]

    def begin() -> list[Session]:
        sessions = [Session(walking_dit, ae, sampling, seed=i) for i in range(3)]
        for session, start, n in zip(sessions, starts, ahead):
            session.start(start)
            for t in range(n):
                session.step(ACTIONS[t % 3])
        return sessions

    alone, together = begin(), begin()
    assert together[0].stepping_key() != together[2].stepping_key()  # frame 1: its cache is not yet full
    with pytest.raises(ValueError, match="cannot be stepped together"):
        step_together(together, [NOOP] * 3)
    for t in range(4):
        acts = [ACTIONS[t % 3], [ACTIONS[(t + 1) % 3], NOOP], Action(camera=(0.0, 10.0))]
        expected = [s.step(a) for s, a in zip(alone, acts)]
        ready = [i for i, s in enumerate(together) if s.stepping_key() == together[0].stepping_key()]
        got = step_together([together[i] for i in ready], [acts[i] for i in ready])
        for i in set(range(3)) - set(ready):
            got.insert(i, together[i].step(acts[i]))
        for a, b in zip(expected, got):
            differ = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16))
            assert a.shape == b.shape and differ.max() <= 1 and (differ > 0).mean() < 2e-3
    assert [s.pos for s in together] == [10, 8, 5]
    assert len({s.stepping_key() for s in together}) == 1  # all past their first frames now


@pytest.mark.parametrize("memory", [False, True])
def test_a_motion_context_is_taken_in_and_cached_equals_uncached(models, walking_dit, memory):
    """start(image, context=(frames, actions)): the context frames fill the network's context (the cache gets their
    keys and values, so a cached play equals an uncached one) and the walk takes up their motion."""
    ae, _ = models
    sampling = SamplingConfig(steps=2, context_sigma=0.1, memory=memory)
    earlier = np.stack([image(5, 16), image(6, 16), image(7, 16)])
    running = [Action({"forward", "sprint"})] * 3
    plays = []
    for use_cache in (True, False):
        session = Session(walking_dit, ae, sampling, seed=1, use_cache=use_cache)
        first = session.start(image(8, 16), context=(earlier, running))
        assert first.shape == (16, 16, 3) and session.pos == 3
        if memory:
            np.testing.assert_array_equal(first, image(8, 16))  # the image itself, as a start without context
        assert session.walks[0].vz < -0.1  # running forward (north) into the first step, as the game would be
        plays.append([first] + [session.step(a) for a in ACTIONS * 2])
    if memory:  # the memory starts from the image alone, as without a context (what is seen first wins there)
        assert 0.5 * 16 * 16 < len(session.memories[0]) <= 16 * 16  # one picture's points, less the arm
    for a, b in zip(*plays):
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() <= 1
    # A batch: (B, K, H, W, 3) frames, each action one for all games or B of them.
    batch = Session(walking_dit, ae, sampling, seed=1)
    frames = batch.start(np.stack([image(8, 16)] * 2), context=(np.stack([earlier] * 2), [NOOP, running[:2], NOOP]))
    assert frames.shape == (2, 16, 16, 3) and batch.step(NOOP).shape == (2, 16, 16, 3)


def test_a_motion_context_that_does_not_fit_is_refused(models, walking_dit):
    ae, _ = models
    s = Session(walking_dit, ae, SamplingConfig(steps=1), seed=0)
    with pytest.raises(ValueError, match="one action after each of its frames: 2 frames, 1 actions"):
        s.start(image(), context=(np.stack([image(1), image(2)]), [NOOP]))
    with pytest.raises(ValueError, match=r"context frames must be uint8 shaped like \(K, 16, 16, 3\)"):
        s.start(image(), context=(np.zeros((2, 8, 8, 3), np.uint8), [NOOP, NOOP]))
