"""`worldmodel bench quant`: weight bytes, output SQNR and speed of each method against fp32.

For every weight shape (K, N) of the world model's DiT and every number of tokens M,
each method's layer is built from the same random weights and run on the same inputs.
Inputs are Gaussian with a few feature columns scaled ×20, like the emergent outlier
features of transformers, so that int8 with and without the LLM.int8 decomposition
(t=6 and t=0) differ as they would in a real model.

Columns:
  bytes_vs_fp32  bytes of the quantized weight buffers (bias excluded) / 4·N·K; for LUT
                 the bit-planes, the 8-bit scale codes and their per-channel bf16 scales
  sqnr_db        10·log10(|y_fp32|² / |y − y_fp32|²) on the same inputs
  speed_vs_fp32  fp32 nn.Linear time / method time, timed back to back in interleaved
                 rounds in the same process; the median over rounds (this machine is
                 shared: absolute times drift, a ratio of neighbours much less)
  best_speed_vs_fp32  fastest fp32 call / fastest method call: the speed of the code
                 itself when the machine is busy (a call that was never preempted)
  ms             the method's median time per call

bitsandbytes runs through slow CPU fallbacks, so it is timed only at M <= 64, and not in --quick.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from quant.api import quantize_
from quant.config import BnbConfig, Int8Config, LutConfig, QuantConfig

FULL_SHAPES = [(256, 768), (256, 1024), (1024, 256), (1536, 384)]
FULL_TOKENS = [1, 16, 64, 256, 1024]
QUICK_SHAPES = [(256, 768), (1536, 384)]
QUICK_TOKENS = [1, 64, 256]
BNB_MAX_TOKENS = 64


def methods(include_bnb: bool) -> dict[str, QuantConfig]:
    table: dict[str, QuantConfig] = {
        "int8 t=6": Int8Config(threshold=6.0),
        "int8 t=0": Int8Config(threshold=0.0),
        "lut4": LutConfig(bits=4),
        "lut3": LutConfig(bits=3),
        "lut2": LutConfig(bits=2),
    }
    if include_bnb:
        try:
            import bitsandbytes  # noqa: F401 (imported only to learn whether it is installed)

            table["bnb-int8"] = BnbConfig(kind="int8")
            table["bnb-nf4"] = BnbConfig(kind="nf4")
        except ImportError:
            pass
    return table


def weight_bytes(layer: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for name, t in layer.state_dict().items() if not name.endswith("bias"))


def sqnr_db(ref: torch.Tensor, y: torch.Tensor) -> float:
    noise = (ref - y).pow(2).mean().item()
    return float("inf") if noise == 0 else 10.0 * torch.log10(ref.pow(2).mean() / noise).item()


def activations(m: int, k: int, generator: torch.Generator) -> torch.Tensor:
    x = torch.randn(m, k, generator=generator)
    outliers = torch.randperm(k, generator=generator)[: max(1, k // 256)]
    x[:, outliers] *= 20.0
    return x


def interleaved_timings(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Time each function once per round, `repeats` rounds: seconds per call, per round."""
    for fn in fns.values():  # warm-up: caches, lazy kernel builds
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def speedup(times: dict[str, list[float]], name: str) -> float:
    """Median over rounds of fp32 time / method time: both were timed back to back, under the same load."""
    return statistics.median(f / t for f, t in zip(times["fp32"], times[name]))


@torch.no_grad()
def run(quick: bool) -> list[dict]:
    shapes = QUICK_SHAPES if quick else FULL_SHAPES
    tokens = QUICK_TOKENS if quick else FULL_TOKENS
    thread_counts = [torch.get_num_threads()] if quick else sorted({1, torch.get_num_threads()})
    generator = torch.Generator().manual_seed(0)
    rows: list[dict] = []
    for k, n in shapes:
        linear = nn.Linear(k, n)
        nn.init.normal_(linear.weight, std=k**-0.5)
        layers: dict[str, nn.Module] = {}
        for name, cfg in methods(include_bnb=not quick).items():
            copy = nn.Linear(k, n)
            copy.load_state_dict(linear.state_dict())
            layers[name] = quantize_(copy, cfg).eval()
        fp_bytes = 4 * n * k
        for threads in thread_counts:
            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                for m in tokens:
                    x = activations(m, k, generator)
                    ref = linear(x)
                    active = {name: layer for name, layer in layers.items() if not (name.startswith("bnb") and m > BNB_MAX_TOKENS)}
                    fns = {"fp32": lambda linear=linear, x=x: linear(x)} | {name: (lambda layer=layer, x=x: layer(x)) for name, layer in active.items()}
                    budget = 2 * m * k * n
                    repeats = 7 if quick else (21 if budget < 5e7 else 15)
                    times = interleaved_timings(fns, repeats)
                    rows.append(dict(method="fp32", M=m, K=k, N=n, threads=threads, bytes_vs_fp32=1.0,
                                     sqnr_db=None, speed_vs_fp32=1.0, best_speed_vs_fp32=1.0,
                                     ms=1e3 * statistics.median(times["fp32"])))
                    for name, layer in active.items():
                        rows.append(dict(
                            method=name, M=m, K=k, N=n, threads=threads,
                            bytes_vs_fp32=weight_bytes(layer) / fp_bytes,
                            sqnr_db=sqnr_db(ref, layer(x).float()),
                            speed_vs_fp32=speedup(times, name),
                            best_speed_vs_fp32=min(times["fp32"]) / min(times[name]),
                            ms=1e3 * statistics.median(times[name]),
                        ))
            finally:
                torch.set_num_threads(previous)
    return rows
