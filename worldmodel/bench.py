"""`worldmodel bench stream`: frames/s of live play (Session.step, batch 1, the shipped checkpoint with its world
memory), fp32 against each quantization method, all in one process, and where one frame's time goes.

Speed: one pipeline and one session per method, all started from the same scene and fed the same scripted play.
They take turns: each plays a round of frames, then the next, for several rounds, so every method sees the same
machine load (this machine is shared: absolute timings drift, and methods run one after another in separate
processes once gave ratios that swung by 2×). A method's speed is the median over rounds of fp32's time per frame
/ its time per frame in the same round. 1 thread.

Profile (rows with a `part`): ms per frame of each part of a frame (worldmodel/frame_profile.py), for fp32 and each
method, over frames played with timing hooks on, the methods again taking turns (a few frames each per round);
`share` is the part's share of that method's frame. The DiT's
linear layers are all that quantization touches.

Also per method: `quantized_share`, the share of the DiT's linear weights its layers cover, and the DiT's weight
bytes. bitsandbytes is left out (its CPU paths are fallbacks, many times slower than fp32: `bench quant` has it).
"""

from __future__ import annotations

import statistics

from worldmodel.interleaved import step_times_in_turns

QUICK_METHODS = ["fp32", "int8", "lut4"]
FULL_METHODS = ["fp32", "int8", "lut4", "lut3", "lut2"]
WARMUP_FRAMES = 5  # allocator, kernels, a full context window
PROFILE_ROUND_FRAMES = 4


def _pipeline(method: str):
    from worldmodel.paths import DEFAULT_CHECKPOINT
    from worldmodel.pipeline import WorldPipeline

    return WorldPipeline.from_pretrained(DEFAULT_CHECKPOINT, quant=None if method == "fp32" else method)


def _dit_mib(dit) -> float:
    return sum(t.numel() * t.element_size() for t in dit.state_dict().values()) / 2**20


def run(quick: bool) -> list[dict]:
    import torch

    from data.players import long_play_actions
    from data.scenes import get_scene
    from quant.api import quantized_share
    from quant.cpu_info import cpu_name
    from worldmodel.frame_profile import PARTS, profile_frames

    torch.set_num_threads(1)
    cpu = cpu_name()
    methods = QUICK_METHODS if quick else FULL_METHODS
    rounds, round_frames, profile_rounds = (3, 4, 1) if quick else (20, 10, 5)
    profile_frames_n = profile_rounds * PROFILE_ROUND_FRAMES
    pipes = {method: _pipeline(method) for method in methods}
    image = get_scene("forest_0").image(next(iter(pipes.values())).image_size)
    actions = long_play_actions(WARMUP_FRAMES + rounds * round_frames + profile_frames_n)
    sessions = {}
    for method, pipe in pipes.items():
        sessions[method] = pipe.new_session(seed=0)
        sessions[method].start(image)
        for act in actions[:WARMUP_FRAMES]:
            sessions[method].step(act)

    seconds = step_times_in_turns(sessions, actions, WARMUP_FRAMES, rounds, round_frames)
    t = WARMUP_FRAMES + rounds * round_frames  # the profile rounds go on from there

    rows = []
    for method in methods:
        median = statistics.median(seconds[method])
        rows.append({
            "method": method, "part": "whole frame", "ms_per_frame": 1e3 * median, "frames_per_s": 1 / median,
            "speed_vs_fp32": statistics.median(f / s for f, s in zip(seconds["fp32"], seconds[method])),
            "share": 1.0, "quantized_share": quantized_share(pipes[method].dit), "dit_mib": _dit_mib(pipes[method].dit),
            "threads": 1, "cpu": cpu,
        })  # fmt: skip
    # The profile takes turns too, so that every method's parts are timed under the same load.
    parts_ms: dict[str, dict[str, float]] = {method: dict.fromkeys(PARTS, 0.0) for method in methods}
    for _ in range(profile_rounds):
        for method in methods:
            for part, ms in profile_frames(pipes[method], sessions[method], actions[t : t + PROFILE_ROUND_FRAMES]).items():
                parts_ms[method][part] += ms / profile_rounds
        t += PROFILE_ROUND_FRAMES
    for method in methods:
        parts = parts_ms[method]
        total = sum(parts.values())
        rows += [{"method": method, "part": part, "ms_per_frame": parts[part], "share": parts[part] / total,
                  "threads": 1, "cpu": cpu} for part in PARTS]  # fmt: skip
    return rows
