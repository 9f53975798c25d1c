"""Sessions timed in turns: on a shared, noisy machine methods compared one after another do not compare, so each
round steps every session for the same frames, one after another, and the ratios come from the same rounds."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any


def step_times_in_turns(sessions: dict[str, Any], actions: Sequence, start: int, rounds: int,
                        round_frames: int) -> dict[str, list[float]]:
    """Seconds per frame of each session (name -> Session), one value a round; round r steps every session through
    actions[start + r * round_frames : start + (r + 1) * round_frames]."""
    seconds: dict[str, list[float]] = {name: [] for name in sessions}
    t = start
    for _ in range(rounds):
        for name, session in sessions.items():
            begin = time.perf_counter()
            for act in actions[t : t + round_frames]:
                session.step(act)
            seconds[name].append((time.perf_counter() - begin) / round_frames)
        t += round_frames
    return seconds
