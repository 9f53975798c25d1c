"""Live worlds in worker processes (app/world_processes.py): the same frames as a session in this process, one
message per process a round, and a stopped process costs only its own worlds."""

from __future__ import annotations

import time

import numpy as np
import pytest

from app.session_pool import World
from app.stepper import BatchStepper
from app.world_processes import RemoteSession, WorkerGone, WorldProcesses, step_remote
from app.worlds import DEFAULT_MODEL, WorldFactory, scene_start
from data.actions import Action

ACTS = [Action({"forward"}), Action(camera=(0.0, 6.0)), Action({"left", "jump"})]


@pytest.fixture(scope="module")
def processes():
    made = WorldProcesses(2, "cpu", 1)
    made.start(((DEFAULT_MODEL, "fp32"),), wait=True)
    yield made
    made.close()


def test_worlds_in_two_processes_step_as_they_would_here(processes):
    start = scene_start("plain_0")
    remote = [processes(DEFAULT_MODEL, "fp32", start, seed) for seed in (3, 4)]
    assert remote[0].worker is not remote[1].worker  # a new world goes to the process with the fewest
    local = [WorldFactory("cpu", 1)(DEFAULT_MODEL, "fp32", start, seed) for seed in (3, 4)]
    for r, s in zip(remote, local):
        assert np.array_equal(r.start(start.image), s.start(start.image))
    stepper = BatchStepper(workers=2)
    try:
        worlds = [World(r, "remote") for r in remote]
        for act in ACTS:
            futures = [stepper.submit(w, act) for w in worlds]
            for future, s in zip(futures, local):
                assert np.array_equal(future.result(timeout=60), s.step(act))  # one world per process: alone
        assert [w.frames for w in worlds] == [len(ACTS)] * 2
    finally:
        stepper.close()


def test_a_process_batches_its_worlds_and_a_lost_world_fails_alone(processes):
    start = scene_start("forest_0")
    worker = processes.workers[0]
    pair = [RemoteSession(worker, sid, DEFAULT_MODEL, "fp32", start, sid) for sid in (1001, 1002)]
    for session in pair:
        session.start(start.image)
    frames = step_remote(pair, ACTS[:2])
    assert [f.shape for f in frames] == [(64, 64, 3)] * 2
    ghost = RemoteSession(worker, 1003, DEFAULT_MODEL, "fp32", start, 0)  # never started: unknown to the process
    frames = step_remote([pair[0], ghost], ACTS[:2])
    assert frames[0].shape == (64, 64, 3) and isinstance(frames[1], WorkerGone)
    with pytest.raises(WorkerGone):
        ghost.step(ACTS[0])


def test_a_stopped_process_loses_only_its_worlds_and_is_replaced(processes):
    start = scene_start("icy_0")
    doomed, other = (RemoteSession(worker, sid, DEFAULT_MODEL, "fp32", start, sid)
                     for worker, sid in zip(processes.workers, (2001, 2002)))  # fmt: skip
    doomed.start(start.image)
    other.start(start.image)
    doomed.worker.process.kill()
    doomed.worker.process.join(timeout=10)
    with pytest.raises(WorkerGone, match="press Restart"):
        doomed.step(ACTS[0])
    assert other.step(ACTS[0]).shape == (64, 64, 3)
    fresh = processes(DEFAULT_MODEL, "fp32", start, 3)  # the stopped process is started again
    assert all(worker.alive for worker in processes.workers)
    assert fresh.start(start.image).shape == (64, 64, 3)


def test_an_error_in_a_process_comes_back_as_itself(processes):
    start = scene_start("plain_0")
    t0 = time.monotonic()
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        processes("/no/such/model", "fp32", start, 0).start(start.image)
    assert time.monotonic() - t0 < 30
