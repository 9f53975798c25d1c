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
  planes        uint8 (Np/64, K/4, bits, 32): 4-bit codes, two per byte. For each block of
                64 output channels, run c and bit-plane b, 32 bytes hold the 64 codes: byte 2i
                holds channel i (low nibble) and 32+i (high nibble); byte 2i+1 holds channels
                16+i and 48+i. This order lets the AVX2 kernel widen lookups without shuffles.
  alpha_code    uint8 (G, bits, Np), alpha_scale bfloat16 (Np,): alpha = alpha_code · alpha_scale
  offset_code   int8 (G, Np), offset_scale bfloat16 (Np,): offset = offset_code · offset_scale
  bias          float32 (N,)
The per-group scales are themselves quantized ("double quantization", as QLoRA does for
its block scales): 8-bit codes per group with one bfloat16 scale per output channel.
Signs are flipped so that every alpha is >= 0 (B_b·alpha_b = (−B_b)·(−alpha_b)), so alphas
take unsigned codes 0..255 against the channel's largest alpha; offsets take signed codes
−127..127 against the channel's largest |offset|. Codes are rounded against the *stored*
bfloat16 scale, so the scale's own rounding costs nothing. After compressing the scales
the signs are re-chosen (nearest representable value) for the scales actually stored.
Bits per weight (N a multiple of 64; otherwise count the padded Np channels):
  bits + (bits + 1)·8/group_size + 2·16/K
i.e. at group 64 (the default): 4.625 + 32/K (4-bit), 3.5 + 32/K (3-bit), 2.375 + 32/K (2-bit);
at K = 192 that is 0.150x / 0.115x / 0.080x of fp32, at K = 768 0.146x / 0.111x / 0.076x (at group
128: 4.3125 / 3.25 / 2.1875 + 32/K).
What is exact: the float BCQ form (fit_bcq, rtn_to_bcq) is the method itself, and
RTN -> BCQ is exact in it. Compressing the scales is a second, lossy step; measured
cost <= 0.01 dB of weight SQNR (tests hold it to 0.05 dB), see docs/QUANT.md.
The CPU kernel reads the 8-bit codes directly (the per-channel scales factor out of its
sums); the Triton path gets a float copy of the scales made per call (`scales()`), so
no float scales are ever kept. The format is told by the buffer names: checkpoints of
the first format (float16 `alpha` (G, bits, Np) and `offset` (G, Np)) still load, their
scales compressed on load (signs kept as stored).

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
from quant.kernels.cpu import isa_request
from quant.kernels.cpu import load as load_cpu_kernel
from quant.registry import register_quantize_handler

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
    """Greedy BCQ plus alternating refinement, in float (before scale compression).

    Returns signs (bits, N, K) int8 in {−1, +1}, alpha (G, bits, N) >= 0, offset (G, N), float32.
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
    # Canonical form: alpha >= 0 (flip the bit-plane's signs with it), so alphas take unsigned codes.
    flip = torch.where(alpha < 0, -1.0, 1.0)  # (N, G, bits)
    alpha, signs = alpha * flip, signs * flip[..., None, :]
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


def rtn_to_bcq(
    q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact conversion of uniform codes to BCQ: s·(q − z) = Σ_b s·2^(b−1)·B_b + s·((2^bits − 1)/2 − z)."""
    q = q.long()
    signs = torch.stack([((q >> b) & 1) * 2 - 1 for b in range(bits)]).to(torch.int8)  # (bits, N, K)
    powers = torch.tensor([2.0 ** (b - 1) for b in range(bits)])
    alpha = (scale[..., None] * powers).permute(1, 2, 0).contiguous()  # (G, bits, N)
    offset = (scale * ((2**bits - 1) / 2 - zero)).t().contiguous()  # (G, N)
    return signs, alpha, offset


# ------------------------------------------------------------------------ scale compression


def _row_scale(amax: torch.Tensor, top: int) -> torch.Tensor:
    """bfloat16 scale per channel with amax / scale <= top: rounded up, never down, so no code clips."""
    scale = (amax / top * (1 + 2**-7)).to(torch.bfloat16)  # bf16 rounds by at most 2^-8: stays >= amax / top
    return torch.where(amax > 0, scale, torch.ones_like(scale))


def compress_scales(alpha: torch.Tensor, offset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """alpha (G, bits, N) >= 0 and offset (G, N) -> alpha_code uint8 (G, bits, N), alpha_scale bf16 (N,),
    offset_code int8 (G, N), offset_scale bf16 (N,); see the module docstring."""
    if bool((alpha < 0).any()):
        raise ValueError("compress_scales: alphas must be >= 0 (flip the bit-plane's signs first)")
    alpha_scale = _row_scale(alpha.amax(dim=(0, 1)), 255)
    alpha_code = torch.round(alpha / alpha_scale.float()).clamp(0, 255).to(torch.uint8)
    offset_scale = _row_scale(offset.abs().amax(dim=0), 127)
    offset_code = torch.round(offset / offset_scale.float()).clamp(-127, 127).to(torch.int8)
    return alpha_code, alpha_scale, offset_code, offset_scale


def decompress_scales(
    alpha_code: torch.Tensor, alpha_scale: torch.Tensor, offset_code: torch.Tensor, offset_scale: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha (G, bits, N), offset (G, N)) float32; exact (8-bit codes times 8-bit-mantissa scales)."""
    return alpha_code.float() * alpha_scale.float(), offset_code.float() * offset_scale.float()


def compressed_bcq(weight: torch.Tensor, alpha: torch.Tensor, offset: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Compress a float BCQ fit's scales, then choose each weight's signs for the stored scales.

    Returns signs (bits, N, K) int8 and the four compressed tensors of compress_scales.
    """
    n, k = weight.shape
    groups, bits = alpha.shape[:2]
    compact = compress_scales(alpha, offset)
    alpha_q, offset_q = decompress_scales(*compact)
    w = weight.detach().float().reshape(n, groups, k // groups)
    best = _nearest_signs(w, alpha_q.permute(2, 0, 1), offset_q.t()[..., None])  # (N, G, g, bits)
    return (best.permute(3, 0, 1, 2).reshape(bits, n, k).to(torch.int8), *compact)


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
        self.register_buffer("alpha_code", torch.empty(groups, cfg.bits, np_, dtype=torch.uint8, device=device))
        self.register_buffer("alpha_scale", torch.empty(np_, dtype=torch.bfloat16, device=device))
        self.register_buffer("offset_code", torch.empty(groups, np_, dtype=torch.int8, device=device))
        self.register_buffer("offset_scale", torch.empty(np_, dtype=torch.bfloat16, device=device))
        self.register_buffer("bias", torch.empty(out_features, dtype=torch.float32, device=device) if bias else None)

    @classmethod
    def from_float(cls, linear: nn.Linear, cfg: LutConfig) -> LutLinear:
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, cfg, "cpu")
        weight = linear.weight.detach().float().cpu()
        if cfg.method == "rtn":
            q, scale, zero = rtn_quantize(weight, cfg.bits, cfg.group_size)
            _, alpha, offset = rtn_to_bcq(q, scale, zero, cfg.bits)
        else:
            _, alpha, offset = fit_bcq(weight, cfg.bits, cfg.group_size, cfg.iterations)
        layer.set_compressed(*compressed_bcq(weight, alpha, offset))
        if linear.bias is not None:
            layer.bias = linear.bias.detach().float().cpu().clone()
        return layer.to(linear.weight.device)

    def set_compressed(
        self,
        signs: torch.Tensor,
        alpha_code: torch.Tensor,
        alpha_scale: torch.Tensor,
        offset_code: torch.Tensor,
        offset_scale: torch.Tensor,
    ) -> None:
        """Store signs (bits, N, K) and compressed scales (see compress_scales) in the padded layout."""
        n = self.out_features
        self.planes = pack_codes(signs_to_codes(signs))
        # Padding channels get code 0 and scale 1: they contribute exactly 0.
        self.alpha_code = torch.zeros_like(self.alpha_code)
        self.alpha_code[..., :n] = alpha_code
        self.alpha_scale = torch.ones_like(self.alpha_scale)
        self.alpha_scale[:n] = alpha_scale
        self.offset_code = torch.zeros_like(self.offset_code)
        self.offset_code[:, :n] = offset_code
        self.offset_scale = torch.ones_like(self.offset_scale)
        self.offset_scale[:n] = offset_scale

    def codes(self) -> torch.Tensor:
        """(bits, N, K/4) 4-bit codes."""
        return unpack_codes(self.planes, self.out_features)

    def scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Decompressed (alpha (G, bits, Np), offset (G, Np)) float32, padding included: the kernels' input."""
        return decompress_scales(self.alpha_code, self.alpha_scale, self.offset_code, self.offset_scale)

    def bcq(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(signs (bits, N, K), alpha (G, bits, N), offset (G, N)) as float32, exactly as stored."""
        n = self.out_features
        alpha, offset = self.scales()
        return codes_to_signs(self.codes()), alpha[..., :n], offset[:, :n]

    def dequantized_weight(self) -> torch.Tensor:
        return reference.bcq_dequantize(*self.bcq())

    def extra_repr(self) -> str:
        c = self.cfg
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={c.bits}, group_size={c.group_size}"

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        if prefix + "weight" in state_dict and prefix + "planes" not in state_dict:
            error_msgs.append(
                f"{prefix or 'model'}: the checkpoint holds float weights but this layer is LutLinear; "
                "load the float checkpoint into a float model and quantize it with quant.quantize_"
            )
            return
        if prefix + "alpha" in state_dict and prefix + "alpha_code" not in state_dict:
            _upgrade_float16_scales(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        # Conversions only when needed: at M = 1 the whole call is ~15 µs, and each no-op op costs ~0.3.
        if x2.dtype != torch.float32:
            x2 = x2.float()
        if not x2.is_contiguous():
            x2 = x2.contiguous()
        if x2.is_cuda:
            from quant.kernels.triton.lut_matmul import lut_linear_triton

            alpha, offset = self.scales()  # a scratch copy per call: the float scales are never kept
            y = lut_linear_triton(x2, self.planes, alpha, offset, self.bias, self.out_features, self.cfg.group_size)
        else:
            kernel = load_cpu_kernel("lut_gemm")
            if kernel is None:
                y = torch.nn.functional.linear(x2, self.dequantized_weight(), self.bias)
            else:
                bias = self.bias if self.bias is not None else torch.empty(0)
                y = kernel.lut_linear(
                    x2, self.planes, self.alpha_code, self.alpha_scale, self.offset_code, self.offset_scale,
                    bias, self.out_features, self.cfg.group_size, isa_request(),
                )
        if y.dtype != x.dtype:
            y = y.to(x.dtype)
        return y if x.dim() == 2 else y.reshape(*shape[:-1], self.out_features)


def _upgrade_float16_scales(state_dict: dict, prefix: str) -> None:
    """First-format checkpoints (float16 `alpha` (G, bits, Np), `offset` (G, Np)): compress in place.

    Alphas are made >= 0 by flipping the matching bit-plane signs in the packed codes (a
    negative alpha was legal in that format); the signs are otherwise kept as stored.
    """
    alpha = state_dict.pop(prefix + "alpha").float()
    offset = state_dict.pop(prefix + "offset").float()
    negative = alpha < 0  # (G, bits, Np)
    if bool(negative.any()):
        planes = state_dict[prefix + "planes"]
        nb, chunks, bits, _ = planes.shape
        codes = unpack_codes(planes, nb * 64)  # (bits, Np, K/4)
        runs = chunks // alpha.shape[0]
        flip = negative.permute(1, 2, 0).repeat_interleave(runs, dim=2)  # (bits, Np, K/4)
        state_dict[prefix + "planes"] = pack_codes(torch.where(flip, codes ^ 0x0F, codes))
        alpha = alpha.abs()
    alpha_code, alpha_scale, offset_code, offset_scale = compress_scales(alpha, offset)
    state_dict[prefix + "alpha_code"], state_dict[prefix + "alpha_scale"] = alpha_code, alpha_scale
    state_dict[prefix + "offset_code"], state_dict[prefix + "offset_scale"] = offset_code, offset_scale


@register_quantize_handler(LutConfig)
def _lut_handler(linear: nn.Linear, cfg: LutConfig, empty: bool) -> nn.Module:
    if empty:
        return LutLinear(linear.in_features, linear.out_features, linear.bias is not None, cfg, linear.weight.device)
    return LutLinear.from_float(linear, cfg)
