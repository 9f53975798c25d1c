"""LUT-GEMM: sub-4-bit weights in binary-coding form, multiplied by table lookups.

How it works (Park et al., 2022, "LUT-GEMM: Quantized Matrix Multiplication based on
LUTs for Efficient Inference in Large-Scale Generative Language Models"):
  * Binary-coding quantization (BCQ). Within each group of `group_size` inputs of one
    output channel, W[n, k] ≈ Σ_b alpha_b · B_b[n, k] + offset, with B_b ∈ {−1, +1}
    and one scale alpha_b per bit-plane b. Fitting: greedy (B_b = sign(residual),
    alpha_b = mean|residual|, peel off, repeat), then alternating refinement (least
    squares for the alphas and offset given the signs; the nearest of the 2^bits
    representable values for each weight given the alphas). Uniform round-to-nearest
    is a special case: q = Σ_b 2^b·bit_b and bit_b = (B_b + 1)/2 give
    s·(q − z) = Σ_b (s·2^(b−1))·B_b + s·((2^bits − 1)/2 − z), so RTN converts exactly.
  * The matmul never rebuilds W. For every run of μ = 4 activations a 16-entry table
    holds all ±1-weighted sums of those 4 values; the 4 signs of one bit-plane form a
    4-bit code, so one lookup replaces 4 multiply-adds, and the tables are shared by
    every output channel and every bit-plane.

Storage (all registered buffers, so state_dict / safetensors round-trip):
  planes  uint8 (Np/64, K/4, bits, 32): 4-bit codes, two per byte. For each block of 64
          output channels, run c and bit-plane b, 32 bytes hold the 64 codes: byte 2i
          holds channel i (low nibble) and 32+i (high nibble); byte 2i+1 holds channels
          16+i and 48+i. This order lets the AVX2 kernel widen lookups without shuffles.
  alpha   float16 (G, bits, Np), offset float16 (G, Np), bias float32 (N,).
Per weight that is bits + (bits + 1)·16/group_size bits: 4.625 at 4 bits and group 128.

Paths: CUDA -> Triton kernel (exact float tables); CPU -> compiled AVX2 / AVX-512BW kernel (tables
quantized to 7-bit integers per group of activations, looked up with byte shuffles as
in T-MAC; int8/int16 accumulation; ~37 dB against exact tables, far above the 10-20 dB
of the weight quantization itself); no compiler -> dequantize-then-matmul.
"""

from __future__ import annotations

import torch
from torch import nn

from quant import reference
from quant.config import LutConfig
from quant.kernels.cpu import load as load_cpu_kernel

# Byte p of a 32-byte run holds (low nibble) channel LOW_CHANNEL[p] and (high) 32 + that.
LOW_CHANNEL = torch.tensor([(p // 2) + 16 * (p % 2) for p in range(32)])


# ------------------------------------------------------------------------ fitting


def _nearest_signs(w: torch.Tensor, alpha: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Best signs for fixed alpha (N, G, bits) and offset (N, G, 1): (N, G, g, bits) in {−1, +1}."""
    bits = alpha.shape[-1]
    combos = torch.arange(2**bits)
    combo_signs = ((combos[:, None] >> torch.arange(bits)[None, :]) & 1).float() * 2 - 1  # (C, bits)
    values = alpha @ combo_signs.t() + offset  # (N, G, C)
    sorted_values, order = values.sort(dim=-1)
    bounds = (sorted_values[..., 1:] + sorted_values[..., :-1]) / 2  # (N, G, C-1)
    rank = torch.searchsorted(bounds.contiguous(), w.contiguous())  # (N, G, g)
    choice = torch.gather(order, -1, rank)
    return combo_signs[choice]  # (N, G, g, bits)


def _least_squares(w: torch.Tensor, signs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """alpha (N, G, bits), offset (N, G, 1) minimising |w − signs·alpha − offset|² per group."""
    design = torch.cat([signs, torch.ones_like(signs[..., :1])], dim=-1).double()  # (N, G, g, bits+1)
    gram = design.transpose(-1, -2) @ design
    ridge = 1e-9 * design.shape[-2] * torch.eye(design.shape[-1], dtype=torch.float64)
    rhs = design.transpose(-1, -2) @ w.double()[..., None]
    theta = torch.linalg.solve(gram + ridge, rhs)[..., 0].float()  # (N, G, bits+1)
    return theta[..., :-1], theta[..., -1:]


def fit_bcq(weight: torch.Tensor, bits: int, group_size: int, iterations: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Greedy BCQ plus alternating refinement.

    Returns signs (bits, N, K) int8 in {−1, +1}, alpha (G, bits, N), offset (G, N), float32.
    """
    n, k = weight.shape
    groups = k // group_size
    w = weight.detach().float().reshape(n, groups, group_size)
    offset = w.mean(dim=-1, keepdim=True)  # (N, G, 1)
    residual = w - offset
    alpha_list, sign_list = [], []
    for _ in range(bits):
        s = torch.where(residual >= 0, 1.0, -1.0)
        a = residual.abs().mean(dim=-1, keepdim=True)
        residual = residual - a * s
        alpha_list.append(a[..., 0])
        sign_list.append(s)
    alpha = torch.stack(alpha_list, dim=-1)  # (N, G, bits)
    signs = torch.stack(sign_list, dim=-1)  # (N, G, g, bits)
    best_err = ((signs @ alpha[..., None])[..., 0] + offset - w).pow(2).sum(-1)  # (N, G)
    for _ in range(iterations):
        new_alpha, new_offset = _least_squares(w, signs)
        new_signs = _nearest_signs(w, new_alpha, new_offset)
        err = ((new_signs @ new_alpha[..., None])[..., 0] + new_offset - w).pow(2).sum(-1)
        better = err < best_err  # keep each group's best fit: refinement never makes a group worse
        alpha = torch.where(better[..., None], new_alpha, alpha)
        offset = torch.where(better[..., None], new_offset, offset)
        signs = torch.where(better[..., None, None], new_signs, signs)
        best_err = torch.minimum(err, best_err)
    # Signs chosen for the float16 alphas and offsets that will actually be stored.
    alpha, offset = alpha.half().float(), offset.half().float()
    signs = _nearest_signs(w, alpha, offset)
    return (
        signs.permute(3, 0, 1, 2).reshape(bits, n, k).to(torch.int8),
        alpha.permute(1, 2, 0).contiguous(),
        offset[..., 0].t().contiguous(),
    )


def rtn_quantize(weight: torch.Tensor, bits: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Uniform asymmetric round-to-nearest per group: q (N, K) in [0, 2^bits − 1], scale (N, G), zero (N, G)."""
    n, k = weight.shape
    w = weight.detach().float().reshape(n, k // group_size, group_size)
    lo, hi = w.amin(dim=-1), w.amax(dim=-1)
    top = 2**bits - 1
    scale = ((hi - lo) / top).clamp_min(1e-12)
    zero = torch.round(-lo / scale).clamp(0, top)
    q = torch.clamp(torch.round(w / scale[..., None]) + zero[..., None], 0, top)
    return q.reshape(n, k).to(torch.uint8), scale, zero


def rtn_to_bcq(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact conversion of uniform codes to BCQ: s·(q − z) = Σ_b s·2^(b−1)·B_b + s·((2^bits − 1)/2 − z)."""
    q = q.long()
    signs = torch.stack([((q >> b) & 1) * 2 - 1 for b in range(bits)]).to(torch.int8)  # (bits, N, K)
    powers = torch.tensor([2.0 ** (b - 1) for b in range(bits)])
    alpha = (scale[..., None] * powers).permute(1, 2, 0).contiguous()  # (G, bits, N)
    offset = (scale * ((2**bits - 1) / 2 - zero)).t().contiguous()  # (G, N)
    return signs, alpha, offset


# ------------------------------------------------------------------------ packing


def signs_to_codes(signs: torch.Tensor) -> torch.Tensor:
    """(bits, N, K) ±1 -> (bits, N, K/4) 4-bit codes, bit j set where input 4c+j has sign +1."""
    bits, n, k = signs.shape
    positive = (signs > 0).to(torch.uint8).reshape(bits, n, k // 4, 4)
    return (positive << torch.arange(4, dtype=torch.uint8, device=signs.device)).sum(dim=-1, dtype=torch.uint8)


def codes_to_signs(codes: torch.Tensor) -> torch.Tensor:
    bits, n, chunks = codes.shape
    set_bits = (codes.long()[..., None] >> torch.arange(4, device=codes.device)) & 1
    return (set_bits * 2 - 1).reshape(bits, n, chunks * 4).to(torch.int8)


def pack_codes(codes: torch.Tensor) -> torch.Tensor:
    """(bits, N, K/4) codes -> planes (Np/64, K/4, bits, 32) uint8 (layout in the module docstring)."""
    bits, n, chunks = codes.shape
    np_ = -(-n // 64) * 64
    padded = torch.zeros(bits, np_, chunks, dtype=torch.uint8)
    padded[:, :n] = codes
    blocks = padded.reshape(bits, np_ // 64, 64, chunks).permute(1, 3, 0, 2)  # (NB, C, bits, 64)
    low = blocks[..., LOW_CHANNEL]
    high = blocks[..., 32 + LOW_CHANNEL]
    return (low | (high << 4)).contiguous()


def unpack_codes(planes: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of pack_codes: (bits, N, K/4)."""
    nb, chunks, bits, _ = planes.shape
    blocks = torch.empty(nb, chunks, bits, 64, dtype=torch.uint8, device=planes.device)
    low = LOW_CHANNEL.to(planes.device)
    blocks[..., low] = planes & 0x0F
    blocks[..., 32 + low] = planes >> 4
    return blocks.permute(2, 0, 3, 1).reshape(bits, nb * 64, chunks)[:, :n]


# ------------------------------------------------------------------------ the layer


class LutLinear(nn.Module):
    """Drop-in for nn.Linear holding BCQ bit-planes; see the module docstring."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool,
        cfg: LutConfig,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        group = cfg.group_size
        if in_features % group:
            raise ValueError(
                f"LutLinear: in_features={in_features} is not a multiple of group_size={group}; "
                "pick a group size that divides it or leave this layer out with filter_fn"
            )
        self.in_features, self.out_features, self.cfg = in_features, out_features, cfg
        np_ = -(-out_features // 64) * 64
        groups = in_features // group
        self.register_buffer("planes", torch.empty(np_ // 64, in_features // 4, cfg.bits, 32, dtype=torch.uint8, device=device))
        self.register_buffer("alpha", torch.empty(groups, cfg.bits, np_, dtype=torch.float16, device=device))
        self.register_buffer("offset", torch.empty(groups, np_, dtype=torch.float16, device=device))
        self.register_buffer("bias", torch.empty(out_features, dtype=torch.float32, device=device) if bias else None)

    @classmethod
    def from_float(cls, linear: nn.Linear, cfg: LutConfig) -> "LutLinear":
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, cfg, "cpu")
        weight = linear.weight.detach().float().cpu()
        if cfg.method == "rtn":
            q, scale, zero = rtn_quantize(weight, cfg.bits, cfg.group_size)
            signs, alpha, offset = rtn_to_bcq(q, scale, zero, cfg.bits)
        else:
            signs, alpha, offset = fit_bcq(weight, cfg.bits, cfg.group_size, cfg.iterations)
        layer.set_bcq(signs, alpha, offset)
        if linear.bias is not None:
            layer.bias = linear.bias.detach().float().cpu().clone()
        return layer.to(linear.weight.device)

    def set_bcq(self, signs: torch.Tensor, alpha: torch.Tensor, offset: torch.Tensor) -> None:
        """Store signs (bits, N, K), alpha (G, bits, N) and offset (G, N) in the packed layout."""
        n = self.out_features
        self.planes = pack_codes(signs_to_codes(signs))
        self.alpha = torch.zeros_like(self.alpha)
        self.alpha[..., :n] = alpha.half()
        self.offset = torch.zeros_like(self.offset)
        self.offset[:, :n] = offset.half()

    def codes(self) -> torch.Tensor:
        """(bits, N, K/4) 4-bit codes."""
        return unpack_codes(self.planes, self.out_features)

    def bcq(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(signs (bits, N, K), alpha (G, bits, N), offset (G, N)) as float32."""
        n = self.out_features
        return codes_to_signs(self.codes()), self.alpha[..., :n].float(), self.offset[:, :n].float()

    def dequantized_weight(self) -> torch.Tensor:
        return reference.bcq_dequantize(*self.bcq())

    def extra_repr(self) -> str:
        c = self.cfg
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={c.bits}, group_size={c.group_size}"

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):  # noqa: ANN001
        if prefix + "weight" in state_dict and prefix + "planes" not in state_dict:
            error_msgs.append(
                f"{prefix or 'model'}: the checkpoint holds float weights but this layer is LutLinear; "
                "load the float checkpoint into a float model and quantize it with quant.quantize_"
            )
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).float().contiguous()
        if x2.is_cuda:
            from quant.kernels.triton.lut_matmul import lut_linear_triton

            y = lut_linear_triton(x2, self.planes, self.alpha, self.offset, self.bias, self.out_features, self.cfg.group_size)
        else:
            kernel = load_cpu_kernel("lut_gemm")
            if kernel is None:
                y = torch.nn.functional.linear(x2, self.dequantized_weight(), self.bias)
            else:
                bias = self.bias if self.bias is not None else torch.empty(0)
                y = kernel.lut_linear(x2, self.planes, self.alpha, self.offset, bias, self.out_features, self.cfg.group_size, -1)
        return y.to(x.dtype).reshape(*shape[:-1], self.out_features)
