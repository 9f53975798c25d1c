"""`worldmodel bench quant`: weight bytes, output SQNR and speed of each method against fp32, and against PyTorch's
own int8 (quantize_dynamic on fbgemm and onednn, torchao when installed) and bitsandbytes.

For every weight shape (K, N) of the shipped DiT (and 4096², a large-model shape) and every number of tokens M,
each method's layer is built from the same random weights and run on the same inputs, in one process, 1 thread.
Two inputs: plain Gaussian, and Gaussian with 1 in 256 feature columns scaled ×20, like the emergent outlier
features of transformers (what separates LLM.int8 with and without its decomposition, t=6 and t=0). Speed is
timed on the outlier inputs, so the decomposition's cost is in it.

Columns:
  path           which kernel ran: our CPU kernels' SIMD path (avx512vnni / avx512bw / avx2; on an AVX-512 CPU
                 the AVX2 path is timed too, forced, as "… [avx2]" rows), or the peer's engine
  bytes_vs_fp32  bytes of the weight buffers (bias excluded) / 4·N·K
  sqnr_db / sqnr_outlier_db   10·log10(|y_fp32|² / |y − y_fp32|²) on the plain / outlier inputs
  speed_vs_fp32  fp32 nn.Linear time / method time: every method is called once per round, back to back, for
                 several rounds; the median of the per-round ratios (this machine is shared: absolute times drift,
                 a ratio of neighbours much less)
  best_speed_vs_fp32  fastest fp32 call / fastest method call (the code's own speed when the machine is busy)
  speed_vs_torch_dyn  for our methods: PyTorch's quantize_dynamic (fbgemm) time / ours, the median of per-round
                 ratios like speed_vs_fp32
  ms             the method's median time per call
  cpu            the CPU and its widest SIMD level

A peer that runs more than SLOW times slower than fp32 at some M is not timed at the larger M of that shape
(bitsandbytes' CPU fallbacks, torchao's eager int8 path). `--device cuda` times the Triton kernels and
bitsandbytes on a GPU instead (quant/bench_cuda.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch
from torch import nn

from quant.api import quantize_
from quant.bench_common import (
    FULL_SHAPES,
    FULL_TOKENS,
    QUICK_SHAPES,
    QUICK_TOKENS,
    activations,
    interleaved_timings,
    ours,
    speedup,
    sqnr_db,
    weight_bytes,
)
from quant.bench_peers import peers
from quant.config import Int8Config, LutConfig
from quant.cpu_info import cpu_name
from quant.kernels.cpu import force_avx2
from quant.kernels.cpu import load as load_cpu_kernel

SLOW = 10.0
TORCH_DYN = "torch dyn fbgemm"  # PyTorch's own int8 on x86: what ours must beat


def kernel_paths() -> dict[type, str]:
    """Our layers' SIMD path on this CPU, by config type ("reference" where the kernel did not build)."""
    int8, lut = load_cpu_kernel("int8_gemm"), load_cpu_kernel("lut_gemm")
    return {Int8Config: int8.isa() if int8 else "reference", LutConfig: lut.isa() if lut else "reference"}


def vs_torch_dyn(times: dict[str, list[float]], name: str) -> float | None:
    """Median over rounds of PyTorch's quantize_dynamic (fbgemm) time / our method's time, for our methods only."""
    if TORCH_DYN not in times or name.split(" [")[0] not in ours():
        return None
    return statistics.median(d / t for d, t in zip(times[TORCH_DYN], times[name]))


def forced_avx2(layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def call(x: torch.Tensor) -> torch.Tensor:
        with force_avx2():
            return layer(x)

    return call


def candidates(linear: nn.Linear, quick: bool) -> dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], int, str]]:
    """Name -> (callable, weight bytes, path) for ours (plus their forced AVX2 paths on AVX-512 CPUs) and the peers."""
    paths = kernel_paths()
    table: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], int, str]] = {}
    for name, cfg in ours().items():
        copy = nn.Linear(linear.in_features, linear.out_features)
        copy.load_state_dict(linear.state_dict())
        layer = quantize_(copy, cfg).eval()
        path = paths[type(cfg)]
        table[name] = (layer, weight_bytes(layer), path)
        if path.startswith("avx512") and name in ("int8 t=6", "lut4"):
            table[f"{name} [avx2]"] = (forced_avx2(layer), weight_bytes(layer), "avx2 (forced)")
    engines = {"torch dyn fbgemm": "fbgemm", "torch dyn onednn": "onednn", "torchao int8 dyn": "torchao eager",
               "torchao int8 dyn compiled": "torchao inductor", "bnb-int8": "bitsandbytes", "bnb-nf4": "bitsandbytes"}
    for name, peer in peers(linear, compiled=not quick).items():
        table[name] = (peer.call, peer.weight_bytes, engines.get(name, "peer"))
    return table


@torch.no_grad()
def run(quick: bool, device: str = "cpu") -> list[dict]:
    if device != "cpu":
        from quant.bench_cuda import run as run_cuda

        return run_cuda(quick, device)
    shapes = QUICK_SHAPES if quick else FULL_SHAPES
    tokens = QUICK_TOKENS if quick else FULL_TOKENS
    cpu = cpu_name()
    generator = torch.Generator().manual_seed(0)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows: list[dict] = []
    try:
        for k, n in shapes:
            linear = nn.Linear(k, n)
            nn.init.normal_(linear.weight, std=k**-0.5)
            methods = candidates(linear, quick)
            too_slow: set[str] = set()
            for m in tokens:
                x_plain = activations(m, k, generator, outliers=False)
                x = activations(m, k, generator, outliers=True)
                active = {name: entry for name, entry in methods.items() if name not in too_slow}
                fns = {"fp32": lambda linear=linear, x=x: linear(x)} | {
                    name: (lambda f=f, x=x: f(x)) for name, (f, _, _) in active.items()
                }
                flops = 2 * m * k * n
                rounds = 5 if quick else (15 if flops < 5e9 else 7)
                times = interleaved_timings(fns, rounds)
                rows.append(dict(method="fp32", path="torch", M=m, K=k, N=n, bytes_vs_fp32=1.0, sqnr_db=None,
                                 sqnr_outlier_db=None, speed_vs_fp32=1.0, best_speed_vs_fp32=1.0, speed_vs_torch_dyn=None,
                                 ms=1e3 * statistics.median(times["fp32"]), threads=1, cpu=cpu))
                for name, (f, nbytes, path) in active.items():
                    speed = speedup(times, name)
                    rows.append(dict(
                        method=name, path=path, M=m, K=k, N=n, bytes_vs_fp32=nbytes / (4 * n * k),
                        sqnr_db=sqnr_db(linear(x_plain), f(x_plain).float()),
                        sqnr_outlier_db=sqnr_db(linear(x), f(x).float()),
                        speed_vs_fp32=speed, best_speed_vs_fp32=min(times["fp32"]) / min(times[name]),
                        speed_vs_torch_dyn=vs_torch_dyn(times, name),
                        ms=1e3 * statistics.median(times[name]), threads=1, cpu=cpu,
                    ))
                    if speed < 1.0 / SLOW and name not in ours():
                        too_slow.add(name)
    finally:
        torch.set_num_threads(previous_threads)
    return rows
