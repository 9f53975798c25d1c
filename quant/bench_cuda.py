"""`worldmodel bench quant --device cuda`: the quantized GPU path timed in one call, for a machine with a GPU.

The same shapes, tokens and columns as the CPU bench (quant/bench.py), on CUDA: fp32 and fp16 `F.linear`
(cuBLAS), our Triton kernels (int8 t=6 / t=0, lut4 / lut3 / lut2: kernels/triton/), and bitsandbytes' CUDA
layers (int8, nf4) when installed. Every call is followed by a synchronize, so a time is the kernel's, not its
launch's. On a machine without CUDA it stops at once with a message that says so.
"""

from __future__ import annotations

import copy
import statistics

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


def require_cuda(device: str) -> torch.device:
    if not device.startswith("cuda"):
        raise ValueError(f"bench quant runs on 'cpu' or 'cuda', not {device!r}")
    if not torch.cuda.is_available():
        raise ValueError("bench quant --device cuda needs a CUDA GPU and a CUDA build of torch; this machine has "
                         f"neither (torch {torch.__version__}, torch.cuda.is_available() is False)")
    try:
        import triton  # noqa: F401 (imported only to learn whether it is installed)
    except ImportError as err:
        raise ValueError("bench quant --device cuda needs triton (pip install triton)") from err
    return torch.device(device)


def synchronized(fn, dev: torch.device):
    def call() -> None:
        fn()
        torch.cuda.synchronize(dev)

    return call


@torch.no_grad()
def run(quick: bool, device: str = "cuda") -> list[dict]:
    dev = require_cuda(device)
    gpu = torch.cuda.get_device_name(dev)
    shapes = QUICK_SHAPES if quick else FULL_SHAPES
    tokens = QUICK_TOKENS if quick else FULL_TOKENS
    generator = torch.Generator().manual_seed(0)
    rows: list[dict] = []
    for k, n in shapes:
        linear = nn.Linear(k, n)
        nn.init.normal_(linear.weight, std=k**-0.5)
        gpu_linear = copy.deepcopy(linear).to(dev)
        half = copy.deepcopy(linear).half().to(dev)
        # name -> (x -> y, weight bytes, path)
        methods = {"fp32": (gpu_linear, 4 * n * k, "cuBLAS"), "fp16": (lambda x, half=half: half(x.half()), 2 * n * k, "cuBLAS")}
        for name, cfg in ours().items():
            layer = quantize_(copy.deepcopy(linear), cfg).to(dev).eval()
            methods[name] = (layer, weight_bytes(layer), "triton")
        for name, peer in peers(gpu_linear, device="cuda").items():
            methods[name] = (peer.call, peer.weight_bytes, "bitsandbytes")
        for m in tokens:
            x_plain = activations(m, k, generator, outliers=False).to(dev)
            x = activations(m, k, generator, outliers=True).to(dev)
            calls = {name: synchronized(lambda f=f, x=x: f(x), dev) for name, (f, _, _) in methods.items()}
            times = interleaved_timings(calls, 5 if quick else 20)
            for name, (f, nbytes, path) in methods.items():
                rows.append(dict(
                    method=name, path=path, M=m, K=k, N=n, bytes_vs_fp32=nbytes / (4 * n * k),
                    sqnr_db=None if name == "fp32" else sqnr_db(gpu_linear(x_plain), f(x_plain).float()),
                    sqnr_outlier_db=None if name == "fp32" else sqnr_db(gpu_linear(x), f(x).float()),
                    speed_vs_fp32=speedup(times, name), ms=1e3 * statistics.median(times[name]), gpu=gpu,
                ))
    return rows
