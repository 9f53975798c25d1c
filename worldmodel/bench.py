"""`worldmodel bench stream`: frames/s of live play (Session.step, batch 1) and resident memory, fp32 and quantized.

Each method runs in its own fresh process, so its resident memory (RSS) is its own: the shipped checkpoint (or,
when none is shipped yet, an untrained model of the default config: the same cost) loaded, quantized when asked,
then `steps` frames played after a warm-up. Speeds are also given as a ratio to fp32 in the same run, because
this machine is shared and absolute timings drift.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

FP32 = "fp32"


def _quant_methods() -> list[str]:
    try:
        from quant import METHODS
    except ImportError:
        return []
    return list(METHODS)


def measure(method: str, steps: int, threads: int) -> dict:
    """Play `steps` frames with one session and return the row for `method` (runs in this process)."""
    import numpy as np
    import torch

    from data.actions import Action
    from worldmodel.paths import DEFAULT_CHECKPOINT
    from worldmodel.pipeline import WorldPipeline

    torch.set_num_threads(threads)
    if DEFAULT_CHECKPOINT.is_dir():
        pipe, source = WorldPipeline.from_pretrained(DEFAULT_CHECKPOINT), "shipped"
    else:
        from worldmodel.autoencoder import FrameAutoencoder
        from worldmodel.config import PRESETS
        from worldmodel.dit import CausalDiT

        ae_cfg, dit_cfg = PRESETS["wm-default"]
        torch.manual_seed(0)
        pipe, source = WorldPipeline(FrameAutoencoder(ae_cfg), CausalDiT(dit_cfg)), "untrained default config"
    if method != FP32:
        pipe.quantize(method)
    size = pipe.image_size
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    actions = [Action(frozenset({"forward"}), (0.0, 3.0)), Action(frozenset({"left", "jump"}), (-1.0, 0.0))]
    session = pipe.new_session(seed=0)
    session.start(image)
    for i in range(5):  # warm-up: allocator, kernels, a full context window
        session.step(actions[i % 2])
    times = []
    for i in range(steps):
        t = time.perf_counter()
        session.step(actions[i % 2])
        times.append(time.perf_counter() - t)
    times.sort()
    median = times[len(times) // 2]
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    return {
        "method": method,
        "checkpoint": source,
        "size": f"{size}x{size}",
        "steps_per_frame": pipe.sampling.steps,
        "threads": threads,
        "fps": 1.0 / median,
        "ms_per_frame": median * 1e3,
        "rss_mb": rss,
    }


def run(quick: bool) -> list[dict]:
    """One row per method at 1 thread (on this shared 2-core machine a second OpenMP thread often stalls on a busy
    core and makes things many times slower); fp32 also at 2 threads, for an idle machine."""
    methods = [FP32] + (["int8"] if quick else _quant_methods())
    steps = 20 if quick else 100
    threads = int(os.environ.get("WM_BENCH_THREADS", "1"))
    runs = [(m, threads) for m in methods] + ([] if quick else [(FP32, 2)])
    rows = []
    for method, threads in runs:
        cmd = [sys.executable, "-m", "worldmodel.bench", "--one", method, "--steps", str(steps), "--threads", str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            rows.append({"method": method, "error": last[:120]})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    base = rows[0].get("fps")
    for row in rows:
        if base and "fps" in row:
            row["speed_vs_fp32"] = row["fps"] / base
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m worldmodel.bench")
    parser.add_argument("--one", required=True, help="measure one method in this process and print its row as JSON")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(measure(args.one, args.steps, args.threads)))
