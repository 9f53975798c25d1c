"""Other people's int8 linear layers, built from the same nn.Linear, for `worldmodel bench quant` to time beside ours.

  torch dyn fbgemm / onednn   `torch.ao.quantization.quantize_dynamic` (int8 weights per tensor, activations
                              quantized per call, per tensor), on each of PyTorch's two CPU engines
  torchao int8 dyn            torchao's `Int8DynamicActivationInt8WeightConfig`, eager and under torch.compile,
                              when torchao is installed (it is optional: `pip install torchao`)
  bnb-int8 / bnb-nf4          bitsandbytes through quant.bnb (its CPU paths are fallbacks)

Each peer is a callable x -> y plus its weight bytes, so the bench treats ours and theirs alike.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Peer:
    call: Callable[[torch.Tensor], torch.Tensor]
    weight_bytes: int


def _quantize_dynamic(linear: nn.Linear, engine: str) -> Peer | None:
    if engine not in torch.backends.quantized.supported_engines:
        return None
    from torch.ao.quantization import quantize_dynamic

    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine  # weights are packed for the engine current at quantization
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch's deprecation notice for quantized tensors
            layer = quantize_dynamic(nn.Sequential(copy.deepcopy(linear)), {nn.Linear}, dtype=torch.qint8)[0]
    finally:
        torch.backends.quantized.engine = previous
    weight = layer.weight()
    return Peer(layer, weight.numel() * weight.element_size())


def _torchao(linear: nn.Linear, compiled: bool) -> Peer | None:
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig
        from torchao.quantization import quantize_ as torchao_quantize_
    except ImportError:
        return None
    layer = copy.deepcopy(linear)
    torchao_quantize_(layer, Int8DynamicActivationInt8WeightConfig())
    weight_bytes = linear.out_features * linear.in_features + 4 * linear.out_features  # int8 rows + a scale each
    # dynamic=True: one compiled graph serves every number of tokens (a compile is ~15 s on a loaded CPU).
    call = torch.compile(layer, dynamic=True) if compiled else layer
    return Peer(call, weight_bytes)


def _bnb(linear: nn.Linear, kind: str) -> Peer | None:
    try:
        import bitsandbytes  # noqa: F401 (imported only to learn whether it is installed)
    except ImportError:
        return None
    from quant.api import quantize_, supports
    from quant.config import BnbConfig

    cfg = BnbConfig(kind=kind)
    if not supports(linear, cfg):
        return None
    layer = quantize_(copy.deepcopy(linear), cfg).eval()
    # Logged on every call of its int8 layer (float32 inputs are cast to float16), thousands of times in a bench.
    logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
    weight_bytes = sum(t.numel() * t.element_size() for n, t in layer.state_dict().items() if not n.endswith("bias"))
    return Peer(layer, weight_bytes)


def peers(linear: nn.Linear, device: str = "cpu", compiled: bool = True) -> dict[str, Peer]:
    """Name -> peer layer for every peer available here (the CPU ones, or those that run on CUDA)."""
    builders: dict[str, Callable[[], Peer | None]] = {}
    if device == "cpu":
        builders["torch dyn fbgemm"] = lambda: _quantize_dynamic(linear, "fbgemm")
        builders["torch dyn onednn"] = lambda: _quantize_dynamic(linear, "onednn")
        builders["torchao int8 dyn"] = lambda: _torchao(linear, compiled=False)
        if compiled:
            builders["torchao int8 dyn compiled"] = lambda: _torchao(linear, compiled=True)
    builders["bnb-int8"] = lambda: _bnb(linear, "int8")
    builders["bnb-nf4"] = lambda: _bnb(linear, "nf4")
    built = {name: build() for name, build in builders.items()}
    return {name: peer for name, peer in built.items() if peer is not None}
