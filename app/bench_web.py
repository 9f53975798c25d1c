"""`worldmodel bench web`: live play through the real server, as browsers see it, at 1, 4 and 8 loopback clients.

The `worldmodel web` server (Gradio + the live socket, app/live.py) runs in this process on a free loopback port
with the shipped model, its live worlds in one worker process per core (app/world_processes.py), stepped together
by one BatchStepper at `worldmodel web`'s default torch threads. The clients are WebSocket clients in this
process's event loop that do what the page's script does: acknowledge each frame as it arrives and flip W on and
off every half second. Input-to-frame latency is from
sending a change of keys to the first frame that has seen it (the frame header says which input it has seen);
frames/s is per client. Then 8 clients play for a minute while the server's resident memory is sampled: before,
at its peak, and after they have gone (the server's process and its worlds' processes, summed).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import socket
import sys
import threading
import time

import numpy as np

MEASURE_S, WARMUP_S, SOAK_S = 12.0, 3.0, 60.0
CLIENT_COUNTS = (1, 4, 8)
FLIP_EVERY_S = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(url: str, ticket: str, seconds: float, warmup: float, out: dict) -> None:
    """One player: start, then ack every frame and flip W twice a second; counts what arrives after the warm-up."""
    from websockets.asyncio.client import connect

    from app.live import FRAME_HEADER

    frames, latencies, pending = 0, [], {}  # pending: input seq -> when it was sent
    seq, held = 0, False
    async with connect(url, origin="http://127.0.0.1", max_size=2**20) as ws:
        await ws.send(json.dumps({"type": "start", "ticket": ticket}))
        t0 = time.perf_counter()
        measuring_from, flip_at = t0 + warmup, t0 + FLIP_EVERY_S
        while (now := time.perf_counter()) < measuring_from + seconds:
            if now >= flip_at:
                held, seq, flip_at = not held, seq + 1, now + FLIP_EVERY_S
                pending[seq] = now
                await ws.send(json.dumps({"type": "input", "seq": seq, "keys": ["forward"] if held else [],
                                          "camera": [0.0, 0.0]}))
            try:
                message = await asyncio.wait_for(ws.recv(), timeout=max(0.01, flip_at - now))
            except asyncio.TimeoutError:
                continue
            if isinstance(message, str):
                status = json.loads(message)
                if status["type"] == "error":
                    out["errors"].append(status["message"])
                continue
            n, seen, _ = FRAME_HEADER.unpack(message[:FRAME_HEADER.size])
            await ws.send(json.dumps({"type": "ack", "n": n}))
            arrived = time.perf_counter()
            if arrived >= measuring_from:
                frames += 1
            for s in [s for s in pending if s <= seen]:
                if pending[s] >= measuring_from:
                    latencies.append(arrived - pending[s])
                del pending[s]
    out["fps"].append(frames / seconds)
    out["latencies"] += latencies


async def play(url: str, ticket: str, clients: int, seconds: float, warmup: float) -> dict:
    out: dict = {"fps": [], "latencies": [], "errors": []}
    results = await asyncio.gather(*(client(url, ticket, seconds, warmup, out) for _ in range(clients)),
                                   return_exceptions=True)
    out["errors"] += [repr(r) for r in results if isinstance(r, BaseException)]
    return out


def server_rss_mb() -> float:
    """Resident memory of the server: this process and the processes it started (the live worlds'), summed."""
    import glob

    total, pids = 0.0, [os.getpid()]
    while pids:
        pid = pids.pop()
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
            for children in glob.glob(f"/proc/{pid}/task/*/children"):
                with open(children) as f:
                    pids += [int(child) for child in f.read().split()]
        except (OSError, StopIteration):  # a process that ended meanwhile
            continue
    return total


class PeakRss:
    """Samples the server's resident memory in a thread, for the peak."""

    def __init__(self) -> None:
        self.rss_mb, self.peak, self.done = server_rss_mb, server_rss_mb(), threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.done.wait(0.25):
            self.peak = max(self.peak, self.rss_mb())

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        return self.peak


def model_alone(session, image: np.ndarray, seconds: float) -> float:
    """Frames/s of one session stepped in a plain loop on this thread: the ceiling for one client."""
    from data.actions import Action

    session.start(image)
    for _ in range(3):  # warm-up: kernels compiled on first use, the allocator
        session.step(Action({"forward"}))
    frames, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        session.step(Action({"forward"}) if frames % 20 < 10 else Action())
        frames += 1
    return frames / (time.perf_counter() - t0)


def run(quick: bool) -> list[dict]:
    import torch

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from app.web import WEB_THREADS, WebSettings, build_demo, serve
    from app.worlds import DEFAULT_MODEL, WorldFactory, scene_start
    from worldmodel.bench_memory import cpu_name

    quants = ("fp32", "int8")
    settings = WebSettings(models=(DEFAULT_MODEL,), quants=quants, port=free_port(), max_sessions=max(CLIENT_COUNTS))
    factory = WorldFactory("cpu", threads=WEB_THREADS)
    start = scene_start("plain_0")
    alone = {quant: model_alone(factory(DEFAULT_MODEL, quant, start, 0), start.image, 1.0 if quick else 4.0)
             for quant in quants}  # also loads each pipeline and compiles its kernels before the clock starts
    demo = build_demo(factory, settings)
    demo.wm_app.live.warm([(DEFAULT_MODEL, quant) for quant in quants], wait=True)  # the worlds' processes
    app, _ = serve(demo, settings, block=False)
    url = f"ws://127.0.0.1:{settings.port}/live/socket"
    cpu, torch_threads = cpu_name(), torch.get_num_threads()
    seconds, warmup = (3.0, 1.0) if quick else (MEASURE_S, WARMUP_S)
    rows = []
    try:
        for quant in quants:
            ticket, _ = app.live_ticket(DEFAULT_MODEL, quant, "plain_0", None)
            rows.append({"quant": quant, "clients": 0, "what": "the model alone, no server",
                         "fps_per_client": alone[quant], "torch_threads": torch_threads, "cpu": cpu})
            for clients in CLIENT_COUNTS:
                stepper = app.live.stepper
                passes, steps, busy = stepper.passes, stepper.steps, stepper.busy_s
                started = time.perf_counter()
                out = asyncio.run(play(url, ticket, clients, seconds, warmup))
                wall = time.perf_counter() - started
                latency = np.array(out["latencies"] or [np.nan]) * 1e3
                rows.append({
                    "quant": quant, "clients": clients, "what": "live socket",
                    "fps_per_client": float(np.median(out["fps"])) if out["fps"] else 0.0,
                    "fps_slowest_client": min(out["fps"], default=0.0),
                    "fps_all_clients": float(sum(out["fps"])),
                    "latency_p50_ms": float(np.percentile(latency, 50)),
                    "latency_p95_ms": float(np.percentile(latency, 95)),
                    "errors": len(out["errors"]) + app.live.errors,
                    "mean_batch": (stepper.steps - steps) / max(1, stepper.passes - passes),
                    "stepper_busy": (stepper.busy_s - busy) / wall,
                    "torch_threads": torch_threads, "cpu": cpu,
                })  # fmt: skip
                time.sleep(0.5)  # the last connections' worlds close

        # A minute of 8 players: no errors, and the server's memory settles once they have gone.
        ticket, _ = app.live_ticket(DEFAULT_MODEL, "int8", "plain_0", None)
        gc.collect()
        before = server_rss_mb()
        peak = PeakRss()
        soak = 10.0 if quick else SOAK_S
        out = asyncio.run(play(url, ticket, 8, soak, 1.0))
        top = peak.stop()
        time.sleep(1.0)
        gc.collect()
        rows.append({
            "quant": "int8", "clients": 8, "what": f"{soak:g} s soak",
            "fps_per_client": float(np.median(out["fps"])) if out["fps"] else 0.0,
            "fps_slowest_client": min(out["fps"], default=0.0),
            "errors": len(out["errors"]) + app.live.errors,
            "rss_mb_before": before, "rss_mb_peak": top, "rss_mb_after": server_rss_mb(),
            "worlds_left": len(app.pool), "torch_threads": torch_threads, "cpu": cpu,
        })  # fmt: skip
    finally:
        with contextlib.redirect_stdout(sys.stderr):  # Gradio says "Closing server ..."; stdout carries --json
            demo.close()
        app.live.close()
    return rows
