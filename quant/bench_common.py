"""What the CPU and CUDA quant benches share: the shapes and tokens, our methods, the inputs, SQNR, weight bytes
and the interleaved timing (every method once per round, back to back; ratios are medians of per-round ratios)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from quant.config import Int8Config, LutConfig, QuantConfig

DIT_SHAPES = [(192, 576), (192, 192), (192, 768), (768, 192), (192, 1152)]  # (K, N) of the shipped DiT's blocks
FULL_SHAPES = [*DIT_SHAPES, (4096, 4096)]
FULL_TOKENS = [1, 16, 64, 256, 1024]  # 64 tokens are one frame of the shipped model
QUICK_SHAPES = [(192, 768), (768, 192)]
QUICK_TOKENS = [1, 64]


def ours() -> dict[str, QuantConfig]:
    return {
        "int8 t=6": Int8Config(threshold=6.0),
        "int8 t=0": Int8Config(threshold=0.0),
        "lut4": LutConfig(bits=4),
        "lut3": LutConfig(bits=3),
        "lut2": LutConfig(bits=2),
    }


def weight_bytes(layer: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for name, t in layer.state_dict().items() if not name.endswith("bias"))


def sqnr_db(ref: torch.Tensor, y: torch.Tensor) -> float:
    noise = (ref - y).pow(2).mean().item()
    return float("inf") if noise == 0 else 10.0 * torch.log10(ref.pow(2).mean() / noise).item()


def activations(m: int, k: int, generator: torch.Generator, outliers: bool) -> torch.Tensor:
    x = torch.randn(m, k, generator=generator)
    if outliers:
        x[:, torch.randperm(k, generator=generator)[: max(1, k // 256)]] *= 20.0
    return x


def interleaved_timings(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Time each function once per round, `rounds` rounds: seconds per call, per round."""
    for fn in fns.values():  # warm-up: caches, lazy kernel builds, compiles
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def speedup(times: dict[str, list[float]], name: str) -> float:
    """Median over rounds of fp32 time / method time: both were timed back to back, under the same load."""
    return statistics.median(f / t for f, t in zip(times["fp32"], times[name]))
