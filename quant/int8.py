"""LLM.int8(): vector-wise int8 linear layers with the outlier decomposition.

How it works (Dettmers et al., 2022, "LLM.int8(): 8-bit Matrix Multiplication for
Transformers at Scale"):
  * Weights are quantized once, per output channel: w_int8 = round(127 · w / max|w_row|).
  * Activations are quantized per call, per row (token): x_int8 = round(qmax · x / max|x_row|).
    One scale per row and one per channel ("vector-wise") keeps a single large value from
    crushing the resolution of the whole matrix.
  * Transformers grow a few feature dimensions with huge magnitudes. Columns of X whose
    largest |x| reaches `threshold` (6.0) are taken out of the int8 product and multiplied
    in floating point against the matching weight columns, dequantized from int8 on the
    fly (so no float weights are stored). They are typically < 0.1% of the columns.
  * Y = (sx ⊗ sw) · (Xq Wqᵀ) + X[:, O] (sw · Wq[:, O])ᵀ + bias.

Storage: the int8 weights live in the blocked layout [N/16][K/4][16][4] that the x86
dot-product instructions consume directly (see kernels/cpu/int8_gemm.cpp); the Triton
kernel reads the same layout. Buffers: weight_int8, weight_scale (N,), weight_sum (Np,)
(row sums, which undo the unsigned shift of activations on CPU) and bias.

Paths: CUDA tensors go to the Triton kernel (8-bit activations); CPU tensors go to the
compiled AVX-512 VNNI kernel (8-bit activations) or AVX2 kernel (7-bit activations, the
exact no-saturation scheme); without a compiler, the reference in reference.py runs.
"""

from __future__ import annotations

import torch
from torch import nn

from quant import reference
from quant.config import Int8Config
from quant.int8_layout import pack_int8, unpack_int8
from quant.kernels.cpu import isa_request
from quant.kernels.cpu import load as load_cpu_kernel
from quant.registry import register_quantize_handler


class Int8Linear(nn.Module):
    """Drop-in for nn.Linear holding int8 weights; see the module docstring."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool,
        cfg: Int8Config,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.cfg = in_features, out_features, cfg
        np_, kp = -(-out_features // 16) * 16, -(-in_features // 4) * 4
        # Created empty: from_float fills them, or load_state_dict(assign=True) replaces them.
        self.register_buffer("weight_int8", torch.empty(np_ // 16, kp // 4, 16, 4, dtype=torch.int8, device=device))
        self.register_buffer("weight_scale", torch.empty(out_features, dtype=torch.float32, device=device))
        self.register_buffer("weight_sum", torch.empty(np_, dtype=torch.int32, device=device))
        self.register_buffer("bias", torch.empty(out_features, dtype=torch.float32, device=device) if bias else None)

    @classmethod
    def from_float(cls, linear: nn.Linear, cfg: Int8Config) -> Int8Linear:
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, cfg, linear.weight.device)
        w_int8, scale = reference.quantize_weight_int8(linear.weight)
        layer.weight_int8 = pack_int8(w_int8)
        layer.weight_scale = scale
        layer.weight_sum = layer.weight_int8.sum(dim=(1, 3), dtype=torch.int32).reshape(-1)
        if linear.bias is not None:
            layer.bias = linear.bias.detach().float().clone()
        return layer

    def weight_int8_rows(self) -> torch.Tensor:
        """The int8 weights as a plain (N, K) matrix (a copy)."""
        return unpack_int8(self.weight_int8, self.out_features, self.in_features)

    def dequantized_weight(self) -> torch.Tensor:
        return self.weight_int8_rows().float() * self.weight_scale[:, None]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, threshold={self.cfg.threshold}"

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        if prefix + "weight" in state_dict and prefix + "weight_int8" not in state_dict:
            error_msgs.append(
                f"{prefix or 'model'}: the checkpoint holds float weights but this layer is Int8Linear; "
                "load the float checkpoint into a float model and quantize it with quant.quantize_"
            )
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        # Conversions only when needed: a streaming frame makes ~110 of these calls, and each no-op op costs ~1 µs.
        if x2.dtype != torch.float32:
            x2 = x2.float()
        if x2.is_cuda:
            from quant.kernels.triton.int8_matmul import int8_linear_triton

            y = int8_linear_triton(x2, self.weight_int8, self.weight_scale, self.bias, self.out_features, self.cfg.threshold)
        else:
            y = self._forward_cpu(x2 if x2.is_contiguous() else x2.contiguous())
        if y.dtype != x.dtype:
            y = y.to(x.dtype)
        return y if x.dim() == 2 else y.reshape(*shape[:-1], self.out_features)

    def _forward_cpu(self, x: torch.Tensor) -> torch.Tensor:
        kernel = load_cpu_kernel("int8_gemm")
        if kernel is None:
            return reference.int8_linear(x, self.weight_int8_rows(), self.weight_scale, self.bias, self.cfg.threshold)
        bias = self.bias if self.bias is not None else torch.empty(0)
        return kernel.int8_linear(
            x, self.weight_int8, self.weight_scale, self.weight_sum, bias, self.out_features, float(self.cfg.threshold),
            isa_request(),
        )


@register_quantize_handler(Int8Config)
def _int8_handler(linear: nn.Linear, cfg: Int8Config, empty: bool) -> nn.Module:
    if empty:
        return Int8Linear(linear.in_features, linear.out_features, linear.bias is not None, cfg, linear.weight.device)
    return Int8Linear.from_float(linear, cfg)
