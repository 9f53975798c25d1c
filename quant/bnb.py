"""bitsandbytes backend, for comparison: Linear8bitLt (LLM.int8) and Linear4bit (NF4).

How it works: the float weights are handed to bitsandbytes' own parameter classes,
which quantize them when the module is moved to a device (`Int8Params` to int8 rows
plus a per-row absmax `SCB`; `Params4bit` to NF4 4-bit codes with a per-64-block
absmax). `BnbConfig(kind="int8")` keeps `threshold` (6.0) for the outlier
decomposition. On CPU, bitsandbytes 0.50 runs these through fallbacks that are far
slower than fp32 (measured here); they are in `quant` to check our int8 against the
reference implementation of LLM.int8 and to compare accuracy with NF4.

Loading: bitsandbytes cannot load a 4-bit state dict into an existing layer, and an
empty layer built on the meta device keeps meta tensors under a plain load_state_dict.
The two thin subclasses below rebuild their parameters from the state dict instead, so
`model.load_state_dict(sd)` works for them like for any other quantized layer.
This module imports bitsandbytes: import it only when a BnbConfig is used.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from quant.config import BnbConfig
from quant.registry import register_quantize_handler

# bitsandbytes' CPU backend warns on import that it could not fetch an optional kernel from the hub
# (a download we never want); keep that one logger quiet.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
try:
    import bitsandbytes as bnb
except ImportError as err:
    raise ImportError("BnbConfig needs bitsandbytes: pip install 'bitsandbytes>=0.45'") from err


def _take(state_dict, prefix: str, name: str, missing_keys: list[str]) -> torch.Tensor | None:
    if prefix + name not in state_dict:
        missing_keys.append(prefix + name)
        return None
    return state_dict[prefix + name]


class BnbLinear8bit(bnb.nn.Linear8bitLt):
    """Linear8bitLt that loads its int8 weights and SCB by assignment."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # bitsandbytes 0.50's CPU int8 quantizer breaks on inputs with more than 2 dims.
        shape = x.shape
        return super().forward(x.reshape(-1, shape[-1])).reshape(*shape[:-1], self.out_features)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        data = _take(state_dict, prefix, "weight", missing_keys)
        scb = _take(state_dict, prefix, "SCB", missing_keys)
        if data is None or scb is None:
            return
        if data.dtype != torch.int8:
            error_msgs.append(f"{prefix}weight: the checkpoint holds float weights but this layer is a bitsandbytes int8 layer")
            return
        weight = bnb.nn.Int8Params(data.clone(), requires_grad=False, has_fp16_weights=False)
        weight.CB, weight.SCB = weight.data, scb.clone()
        self.weight = weight
        self.state.CB, self.state.SCB = None, None
        _load_bias(self, state_dict, prefix, missing_keys)


class BnbLinear4bit(bnb.nn.Linear4bit):
    """Linear4bit (NF4) that rebuilds its packed weight and quant state from a state dict."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return super().forward(x.reshape(-1, shape[-1])).reshape(*shape[:-1], self.out_features)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        data = _take(state_dict, prefix, "weight", missing_keys)
        if data is None:
            return
        stats = {k[len(prefix + "weight."):]: v for k, v in state_dict.items() if k.startswith(prefix + "weight.")}
        if not stats:
            error_msgs.append(f"{prefix}weight: the checkpoint holds float weights but this layer is a bitsandbytes NF4 layer")
            return
        self.weight = bnb.nn.Params4bit.from_prequantized(data=data, quantized_stats=stats, requires_grad=False, device="cpu")
        _load_bias(self, state_dict, prefix, missing_keys)


def _load_bias(layer: nn.Module, state_dict, prefix: str, missing_keys: list[str]) -> None:
    if layer.bias is not None:
        bias = _take(state_dict, prefix, "bias", missing_keys)
        if bias is not None:
            layer.bias = nn.Parameter(bias.detach().float().clone(), requires_grad=False)


def empty_like(linear: nn.Linear, cfg: BnbConfig) -> nn.Module:
    """A bitsandbytes layer of linear's shape on the meta device, waiting for load_state_dict."""
    has_bias = linear.bias is not None
    if cfg.kind == "int8":
        layer = BnbLinear8bit(linear.in_features, linear.out_features, bias=has_bias,
                              has_fp16_weights=False, threshold=cfg.threshold, device="meta")
    else:
        layer = BnbLinear4bit(linear.in_features, linear.out_features, bias=has_bias,
                              compute_dtype=torch.float32, quant_type="nf4", device="meta")
    layer.cfg = cfg
    return layer.eval()


def from_float(linear: nn.Linear, cfg: BnbConfig) -> nn.Module:
    layer = empty_like(linear, cfg)
    weight = linear.weight.detach().float().cpu().clone()
    if cfg.kind == "int8":
        layer.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)
    else:
        layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4")
    if linear.bias is not None:
        layer.bias = nn.Parameter(linear.bias.detach().float().cpu().clone(), requires_grad=False)
    layer = layer.to(linear.weight.device)  # this is where bitsandbytes quantizes
    layer.cfg = cfg
    return layer.eval()


@register_quantize_handler(BnbConfig)
def _bnb_handler(linear: nn.Linear, cfg: BnbConfig, empty: bool) -> nn.Module:
    return empty_like(linear, cfg) if empty else from_float(linear, cfg)
