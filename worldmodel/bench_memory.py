"""`worldmodel bench memory`: what the world memory costs in live play, and that its cost stays flat.

Two sessions of the shipped model in one process, one with the world memory and one without, take turns: each
plays a round of frames, then the other, so both see the same machine load (this machine is shared and
absolute timings drift); the ratio is the median of the per-round ratios. Then one long play with the memory:
time per frame over its first and last stretch, the memory's points, and the process's resident memory.
"""

from __future__ import annotations

import dataclasses
import time

from quant.cpu_info import cpu_name
from worldmodel.interleaved import step_times_in_turns

ROUNDS, ROUND_FRAMES = 10, 20


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def run(quick: bool) -> list[dict]:
    import numpy as np
    import torch

    from data.players import long_play_actions
    from data.scenes import get_scene
    from worldmodel.pipeline import WorldPipeline

    torch.set_num_threads(1)
    pipe = WorldPipeline.from_pretrained()
    image = get_scene("forest_0").image(pipe.image_size)
    cpu = cpu_name()
    acts = long_play_actions(2000)
    sessions = {
        name: pipe.new_session(seed=0, sampling=dataclasses.replace(pipe.sampling, memory=on))
        for name, on in (("with memory", True), ("without memory", False))
    }
    for session in sessions.values():
        session.start(image)
        for act in acts[:5]:  # warm-up: allocator, a full context window
            session.step(act)
    times = step_times_in_turns(sessions, acts, 5, 3 if quick else ROUNDS, ROUND_FRAMES)
    ratios = [a / b for a, b in zip(times["with memory"], times["without memory"])]
    rows = [
        {
            "what": f"live play, {name}",
            "frames_per_s": 1.0 / float(np.median(times[name])),
            "ms_per_frame": 1e3 * float(np.median(times[name])),
            "time_vs_without": float(np.median(ratios)) if name == "with memory" else 1.0,
            "threads": 1,
            "cpu": cpu,
        }
        for name in sessions
    ]

    # A long play with the memory: flat cost per frame and bounded memory.
    frames = 600 if quick else 10_000
    stretch = 100 if quick else 500
    session = pipe.new_session(seed=1, sampling=dataclasses.replace(pipe.sampling, memory=True))
    session.start(image)
    loop = long_play_actions(2000)
    per_frame = []
    rss_start = rss_mb()
    for i in range(frames):
        start = time.perf_counter()
        session.step(loop[i % len(loop)])
        per_frame.append(time.perf_counter() - start)
    rows.append({
        "what": f"{frames:,}-frame play with memory",
        "ms_per_frame_first": 1e3 * float(np.median(per_frame[:stretch])),
        "ms_per_frame_last": 1e3 * float(np.median(per_frame[-stretch:])),
        "memory_points": len(session.memories[0]),
        "memory_capacity": session.memories[0].capacity,
        "rss_mb_start": rss_start,
        "rss_mb_end": rss_mb(),
        "threads": 1,
        "cpu": cpu,
    })  # fmt: skip
    return rows
