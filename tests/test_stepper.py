"""The live server's stepper: worlds asked for at once are stepped together, each as it would be alone."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from app.session_pool import World
from app.stepper import BatchStepper
from data.actions import NOOP, Action
from worldmodel.autoencoder import FrameAutoencoder
from worldmodel.config import PRESETS, SamplingConfig
from worldmodel.dit import CausalDiT
from worldmodel.session import Session

torch.set_num_threads(1)
AE_CFG, DIT_CFG = PRESETS["wm-tiny"]
WALK = Action({"forward"}, (0.0, 4.0))


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    ae, dit = FrameAutoencoder(AE_CFG).eval(), CausalDiT(DIT_CFG).eval()
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return ae, dit


def started(models, seed: int, ahead: int = 0) -> Session:
    ae, dit = models
    session = Session(dit, ae, SamplingConfig(steps=2), seed=seed)
    session.start(np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    for _ in range(ahead):
        session.step(NOOP)
    return session


class Frozen:
    """A session without a stepping key (like the simulator's): it is stepped alone."""

    def __init__(self) -> None:
        self.steps = 0

    def step(self, act: Action) -> np.ndarray:
        self.steps += 1
        return np.full((16, 16, 3), self.steps, np.uint8)


def test_waiting_worlds_are_stepped_together_and_each_gets_its_own_frame(models):
    alone = [started(models, seed, ahead) for seed, ahead in ((1, 5), (2, 3), (3, 9))]
    worlds = [World(started(models, seed, ahead), "w") for seed, ahead in ((1, 5), (2, 3), (3, 9))]
    worlds.append(World(Frozen(), "sim"))
    stepper = BatchStepper()
    try:
        for _ in range(3):
            gate = threading.Barrier(len(worlds))
            results = [None] * len(worlds)

            def ask(i: int, gate: threading.Barrier = gate, results: list = results) -> None:
                gate.wait()  # all four ask at once
                results[i] = stepper.submit(worlds[i], WALK).result(timeout=60)

            threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(worlds))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for session, got in zip(alone, results):
                differ = np.abs(session.step(WALK).astype(np.int16) - got.astype(np.int16))
                assert differ.max() <= 1 and (differ > 0).mean() < 2e-3
            assert results[3][0, 0, 0] == worlds[3].session.steps
    finally:
        stepper.close()
    assert [w.frames for w in worlds] == [3, 3, 3, 3]
    assert stepper.steps == 12 and stepper.passes < 12  # some passes took several worlds


def test_a_failing_step_fails_only_its_own_request_and_a_closed_stepper_refuses(models):
    stepper = BatchStepper()
    never_started = World(Session(models[1], models[0], SamplingConfig(steps=1)), "broken")
    fine = World(started(models, 4), "fine")
    bad, good = stepper.submit(never_started, NOOP), stepper.submit(fine, NOOP)
    with pytest.raises(RuntimeError, match="call start"):
        bad.result(timeout=60)
    assert good.result(timeout=60).shape == (16, 16, 3)
    stepper.close()
    with pytest.raises(RuntimeError, match="closed"):
        stepper.submit(fine, NOOP)


def test_a_step_whose_asker_has_gone_is_dropped_and_the_stepper_carries_on(models):
    stepper = BatchStepper()
    busy, gone, later = (World(started(models, seed), str(seed)) for seed in (5, 6, 7))
    try:
        with busy.lock:  # the stepper takes busy's step and waits for its lock
            first = stepper.submit(busy, NOOP)
            while not first.running():
                pass
            dropped = stepper.submit(gone, NOOP)
            assert dropped.cancel()  # the connection closed while it waited
        assert first.result(timeout=60).shape == (16, 16, 3)
        assert stepper.submit(later, NOOP).result(timeout=60).shape == (16, 16, 3)
        assert gone.frames == 0 and busy.frames == 1 and later.frames == 1
    finally:
        stepper.close()


def test_a_round_waits_for_every_world_that_is_playing(models):
    stepper = BatchStepper(gather_s=0.5)
    a, b = World(started(models, 8, 4), "a"), World(started(models, 9, 4), "b")
    try:
        for world in (a, b):  # both have played: the stepper knows them
            stepper.submit(world, NOOP).result(timeout=60)
        before = stepper.passes
        first = stepper.submit(a, NOOP)
        time.sleep(0.05)  # b asks a little later, as a player whose frame was sent last does
        second = stepper.submit(b, NOOP)
        first.result(timeout=60), second.result(timeout=60)
        assert stepper.passes == before + 1  # one pass for both, not one each
    finally:
        stepper.close()
