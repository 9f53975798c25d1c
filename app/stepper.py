"""The live server's stepper: the worlds waiting when it comes round are stepped together, in batched passes.

Why: a frame of our model is small work (64 tokens, a 192-wide network), so stepping one play at a time leaves
most of a core's arithmetic idle. Measured on the 2-core AMD EPYC (AVX2), int8, torch at one thread
(runs/batchweb): one play makes 18.7 frames/s, a batch of two 22.8, of four 25.7 (frames in all). So every
socket connection hands its steps to this stepper. Each round it takes every step waiting, groups them by
Session.stepping_key (one model, contexts filled alike), cuts each group into one pass per worker and runs the
passes side by side, one per core (worldmodel.session.step_together). The model worlds of `worldmodel web` live
in worker processes (app/world_processes.py: threads of one process take turns on the GIL); the worlds of one
process form one group, sent to it in one message, and the process batches them itself. Each waiting world
advances one frame a round, so no player waits behind another's queue; a world that asks again while a round
runs joins the next. A round first waits (at most gather_s) for every world that played in the last active_s
seconds: a player throttled by its own acknowledgements costs the others up to gather_s a round, never more.
`worldmodel bench web`, 4 players, int8, quiet machine: 9.1 frames/s each (5.8-6.1 with the worlds stepped by
threads of the server's process, 5.1 when each step ran alone).

Why not one pass over every world at all cores' threads: measured, it makes more frames on a quiet machine,
but its threads stall whenever the server's own threads (the socket, the PNG encoder) take a core; one player
then got 12 frames/s instead of 17.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from app.session_pool import World
from data.actions import Action


@dataclass
class _Request:
    world: World
    act: Action
    future: Future = field(default_factory=Future)
    running: bool = False  # marked running: its asker can no longer cancel it

    def take(self) -> bool:
        """Mark it running; False if its asker has gone (the connection closed and cancelled it)."""
        if not self.running:
            self.running = self.future.set_running_or_notify_cancel()
        return self.running


def _group_key(session: Any) -> Any:
    """Which steps can share a pass: a model session's stepping_key; anything else (the simulator) steps alone."""
    key = getattr(session, "stepping_key", None)
    return key() if key is not None else ("alone", id(session))


class BatchStepper:
    def __init__(self, workers: int = 1, max_batch: int = 16, gather_s: float = 0.02, active_s: float = 1.0) -> None:
        if workers < 1 or max_batch < 1 or not 0 <= gather_s < 1 or active_s <= 0:
            raise ValueError(f"bad stepper settings: workers {workers}, max_batch {max_batch}, gather_s {gather_s}, "
                             f"active_s {active_s}")
        self.workers, self.max_batch, self.gather_s, self.active_s = workers, max_batch, gather_s, active_s
        self._pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="live-step") if workers > 1 else None
        self._count_lock = threading.Lock()
        self._asked: dict[int, float] = {}  # world id -> when it last asked (the worlds playing now)
        # For the bench: passes made and the steps they made (their ratio is the mean batch), and the seconds
        # rounds were running (against the wall clock: how busy the stepper was).
        self.passes = 0
        self.steps = 0
        self.busy_s = 0.0
        self._waiting: list[_Request] = []
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="live-stepper", daemon=True)
        self._thread.start()

    def submit(self, world: World, act: Action) -> Future:
        """Ask for one step of `world` with `act`; the future gets the frame (or the step's exception)."""
        request = _Request(world, act)
        with self._wake:
            if self._closed:
                raise RuntimeError("the stepper is closed")
            self._waiting.append(request)
            self._wake.notify()
        return request.future

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=5.0)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                # Every world playing now asks again as soon as its last frame is sent, a few ms apart: wait (at
                # most gather_s) for all of them. Taking whoever came first would split the players into cohorts
                # that take turns in smaller batches (and waiting only for as many as the last round took would
                # keep them split).
                now = time.monotonic()
                self._asked = {w: t for w, t in self._asked.items() if now - t < self.active_s}
                deadline = now + self.gather_s
                while set(self._asked) - {id(r.world) for r in self._waiting} and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._wake.wait(left)
                if self._closed:
                    for request in self._waiting:
                        if request.take():
                            request.future.set_exception(RuntimeError("the server is shutting down"))
                    return
                waiting, self._waiting = self._waiting, []
            waiting = [r for r in waiting if r.take()]  # a late cancel cannot race the result now
            now = time.monotonic()
            self._asked.update((id(r.world), now) for r in waiting)
            passes = [part for group in self._groups(waiting) for part in self._split(group)]
            # The passes of a round run side by side, one per worker (torch at one thread each): the first
            # here, the rest in the pool.
            start = time.monotonic()
            for i in range(0, len(passes), self.workers):
                side = [self._pool.submit(self._step, p) for p in passes[i + 1 : i + self.workers]] if self._pool else []
                self._step(passes[i])
                for done in side:
                    done.result()
            self.busy_s += time.monotonic() - start

    def _groups(self, waiting: list[_Request]) -> list[list[_Request]]:
        """The round's passes: steps grouped by stepping key, at most max_batch each, one step per world (a world
        asked twice takes its second step in the next round)."""
        groups: dict[Any, list[list[_Request]]] = {}
        later: list[_Request] = []
        seen: set[int] = set()
        for request in waiting:
            if id(request.world) in seen:
                later.append(request)
                continue
            try:
                key = _group_key(request.world.session)
            except Exception as err:  # e.g. a session that was never started: only its own step fails
                request.future.set_exception(err)
                continue
            seen.add(id(request.world))
            runs = groups.setdefault(key, [[]])
            if len(runs[-1]) == self.max_batch:
                runs.append([])
            runs[-1].append(request)
        if later:
            with self._wake:
                self._waiting[:0] = later
        return [run for runs in groups.values() for run in runs]

    def _split(self, group: list[_Request]) -> list[list[_Request]]:
        """A group cut into one nearly equal pass per worker; the worlds of one worker process stay one message
        (app/world_processes.py: the process batches them itself)."""
        if getattr(group[0].world.session, "steps_elsewhere", False):
            return [group]
        n = min(self.workers, len(group))
        return [group[i::n] for i in range(n)]

    def _step(self, group: list[_Request]) -> None:
        try:
            with ExitStack() as locks:
                for request in sorted(group, key=lambda r: id(r.world)):  # one order: no two holders deadlock
                    locks.enter_context(request.world.lock)
                frames = _step_sessions([r.world.session for r in group], [r.act for r in group])
        except Exception as err:
            for request in group:
                request.future.set_exception(err)
            return
        with self._count_lock:
            self.passes += 1
            self.steps += len(group)
        for request, frame in zip(group, frames):
            if isinstance(frame, BaseException):  # one world of a process failed, its batch-mates did not
                request.future.set_exception(frame)
            else:
                request.world.frames += 1
                request.future.set_result(frame)


def _step_sessions(sessions: list[Any], acts: list[Action]) -> list[Any]:
    """One step of each session: in one pass (step_together), in one message to their process (step_remote, where
    a failed world's slot holds its exception), or alone (one session, or the simulator's)."""
    if getattr(sessions[0], "steps_elsewhere", False):
        from app.world_processes import step_remote

        return step_remote(sessions, acts)
    if len(sessions) == 1:
        return [sessions[0].step(acts[0])]
    from worldmodel.session import step_together  # torch: imported only when a model is used

    return step_together(sessions, acts)
