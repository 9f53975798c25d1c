"""The live server's worlds in worker processes: each process owns the worlds it started and steps them together.

Why processes, not threads: a model step is thousands of small torch calls, and the Python between them holds
the GIL, so two threads of one process take turns more than they run side by side. Measured on the 2-vCPU AMD
EPYC (AVX2), int8, a batch of two plays at one torch thread: one process makes 22.6 frames/s, two processes side
by side 45.2 (2.0x, runs/batchweb/procs.py), while two threads of one process made 1.24x one; in the server its
two stepping threads were off the CPU for 29% of every pass (runs/batchweb/threads_cpu.py).

A world stays in the process that started it (its KV cache, memory and sampling noise live there). The server
holds a RemoteSession, which starts and steps like a Session; the BatchStepper sends each process the steps of
its worlds in one message, and the process steps them in batched passes, grouped by stepping key
(worldmodel.session.step_together). A new world goes to the process with the fewest; its start takes that
process's turn (tens of ms, or a second or two when it first loads a model or quant method that process has not
loaded: its other players wait that long once). The messages are pickles
over a pipe between this server and the processes it spawned; nothing from outside is unpickled. On a GPU the
server keeps its worlds in its own process (app/live.py): there one process's batched passes keep the device
busy, and every process would hold a CUDA context of its own.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import multiprocessing
import os
import threading
from typing import Any

import numpy as np

from data.actions import Action


class WorkerGone(RuntimeError):
    """The process that held a world has stopped (killed, or out of memory); its worlds are lost."""


def _serve(conn: Any, device: str, threads: int | None, parent_pid: int, preload: tuple[tuple[str, str], ...]) -> None:
    """A worker process: sessions by id, made and stepped on request, until the pipe closes. The `preload`
    (model, quant) pipelines are loaded first, so the first worlds do not wait for them."""
    from app.worlds import WorldFactory
    from data.worker_death import die_with_parent

    die_with_parent(parent_pid)
    factory = WorldFactory(device, threads)
    for model, quant in preload:
        try:
            factory.pipeline(model, quant)
        except Exception:  # the first start asking for it reports the error
            pass
    sessions: dict[int, Any] = {}
    while True:
        try:
            op, args, freed = conn.recv()
        except (EOFError, OSError):
            return
        for sid in freed:
            sessions.pop(sid, None)
        try:
            if op == "start":
                sid, model, quant, start, seed = args
                session = factory(model, quant, start, seed)
                frame = session.start(start.image)
                sessions[sid] = session
                reply = (True, frame)
            elif op == "step":
                reply = (True, _step_worlds(sessions, args[0]))
            elif op == "ping":
                reply = (True, os.getpid())
            else:
                reply = (False, ValueError(f"unknown worker request {op!r}"))
        except Exception as err:  # the caller raises it; the process carries on with its other worlds
            reply = (False, err)
        try:
            conn.send(reply)
        except Exception as err:  # an exception that does not pickle: send what it said
            conn.send((False, RuntimeError(f"{type(err).__name__} in a world's process: {reply[1]}")))


def _step_worlds(sessions: dict[int, Any], steps: list[tuple[int, Action]]) -> list[tuple[bool, Any]]:
    """One step of each (session id, action), in one batched pass per stepping key; (ok, frame or error) each."""
    from worldmodel.session import step_together

    results: dict[int, tuple[bool, Any]] = {}
    groups: dict[Any, list[tuple[int, Action]]] = collections.defaultdict(list)
    for sid, act in steps:
        session = sessions.get(sid)
        if session is None:
            results[sid] = (False, WorkerGone("this world is gone from its process; press Restart"))
            continue
        try:
            groups[session.stepping_key()].append((sid, act))
        except Exception as err:
            results[sid] = (False, err)
    for group in groups.values():
        try:
            frames = step_together([sessions[sid] for sid, _ in group], [act for _, act in group])
            results.update((sid, (True, frame)) for (sid, _), frame in zip(group, frames))
        except Exception as err:
            results.update((sid, (False, err)) for sid, _ in group)
    return [results[sid] for sid, _ in steps]


class WorkerProcess:
    """One spawned process and the pipe to it; one request at a time."""

    def __init__(self, device: str, threads: int | None, name: str, preload: tuple[tuple[str, str], ...] = ()) -> None:
        context = multiprocessing.get_context("spawn")  # a fork would copy the server's threads' locks mid-use
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, device, threads, os.getpid(), preload), name=name,
                                       daemon=True)  # fmt: skip
        self.process.start()
        child.close()
        self._lock = threading.Lock()
        self.worlds = 0  # live RemoteSessions in this process
        self.freed: collections.deque[int] = collections.deque()  # ids of dropped sessions, sent with the next call

    def call(self, op: str, *args: Any) -> Any:
        with self._lock:
            freed = []
            while self.freed:
                freed.append(self.freed.popleft())
            try:
                self._conn.send((op, args, freed))
                ok, value = self._conn.recv()
            except (EOFError, OSError) as err:
                raise WorkerGone(f"the process that held this world stopped ({self.process.name}, exit code "
                                 f"{self.process.exitcode}); press Restart") from err
        if not ok:
            raise value
        return value

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def close(self) -> None:
        self._conn.close()
        self.process.join(timeout=2.0)
        if self.process.is_alive():
            self.process.kill()


class RemoteSession:
    """A model session living in a worker process: start(image) and step(act) return frames, as a Session's do."""

    steps_elsewhere = True  # the stepper sends a process's worlds in one message instead of splitting them

    def __init__(self, worker: WorkerProcess, sid: int, model: str, quant: str, start: Any, seed: int) -> None:
        self.worker, self.sid = worker, sid
        self._spec = (model, quant, dataclasses.replace(start, scene=None), seed)  # the scene's world stays here
        worker.worlds += 1

    def start(self, image: np.ndarray) -> np.ndarray:
        model, quant, start, seed = self._spec
        return self.worker.call("start", self.sid, model, quant, dataclasses.replace(start, image=image), seed)

    def step(self, act: Action) -> np.ndarray:
        return step_remote([self], [act])[0]

    def stepping_key(self) -> tuple:
        return ("process", id(self.worker))  # the process groups its worlds by their own keys

    def __del__(self) -> None:
        self.worker.freed.append(self.sid)  # atomic; no lock in a finalizer
        self.worker.worlds -= 1


def step_remote(sessions: list[RemoteSession], acts: list[Action]) -> list[np.ndarray]:
    """One step of each of these sessions, all of one process, in one message. Raises the first world's error
    only when every world failed; otherwise a failed world's slot holds its exception (BatchStepper sorts them)."""
    worker = sessions[0].worker
    if any(s.worker is not worker for s in sessions):
        raise ValueError("sessions of different processes are stepped in separate messages")
    results = worker.call("step", [(s.sid, act) for s, act in zip(sessions, acts)])
    if not any(ok for ok, _ in results):
        raise results[0][1]
    return [value for _, value in results]


class WorldProcesses:
    """The worker processes of one server, and the factory of RemoteSessions on them."""

    def __init__(self, processes: int, device: str, threads: int | None) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.processes, self.device, self.threads = processes, device, threads
        self.preload: tuple[tuple[str, str], ...] = ()
        self.workers: list[WorkerProcess] = []  # started by start(), or with the first world
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, preload: tuple[tuple[str, str], ...] = (), wait: bool = False) -> None:
        """Start the processes (if not yet), each loading the `preload` (model, quant) pipelines before it serves;
        with `wait`, return once every process has."""
        with self._lock:
            self._start_workers(preload)
            workers = list(self.workers)
        if wait:
            for worker in workers:
                worker.call("ping")

    def _start_workers(self, preload: tuple[tuple[str, str], ...] = ()) -> None:
        if not self.workers:
            self.preload = preload
            self.workers = [WorkerProcess(self.device, self.threads, f"live-world-{i}", preload)
                            for i in range(self.processes)]  # fmt: skip

    def __call__(self, model: str, quant: str, start: Any, seed: int = 0) -> RemoteSession:
        """An unstarted session in the process holding the fewest worlds (a stopped process is replaced)."""
        with self._lock:
            self._start_workers()
            for i, worker in enumerate(self.workers):
                if not worker.alive:
                    self.workers[i] = WorkerProcess(self.device, self.threads, worker.process.name, self.preload)
            worker = min(self.workers, key=lambda w: w.worlds)
            return RemoteSession(worker, next(self._ids), model, quant, start, seed)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
