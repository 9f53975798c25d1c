"""Triton LUT-GEMM for CUDA: per run of 4 activations, a 16-entry table of signed sums, gathered by 4-bit codes.

For a tile of BLOCK_M rows and BLOCK_N output channels, and each group of inputs and
bit-plane b, the kernel walks the group's runs of 4 activations: it builds the table
T[m, c] = Σ_j s_j(c)·x[m, 4r+j] in registers (float32, exact), reads the 4-bit codes of
the tile's channels from the packed planes (layout in quant/lut.py) and gathers
T[m, code[n]] with `tl.gather`, summing over the group; the group sum is scaled by
alpha[g, b, n]. The offset term adds offset[g, n] · Σ_{k∈g} x[m, k]. Tables stay in
float32, so the result equals dequantize-then-matmul to float rounding.

The layer stores its scales as 8-bit codes (see quant/lut.py); it passes this kernel a
float32 scratch copy, `LutLinear.scales()`, made per call.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _lut_matmul_kernel(
    x_ptr, planes_ptr, alpha_ptr, offset_ptr, bias_ptr, y_ptr,
    M, N, Np, K, stride_xm, stride_ym,
    GROUP: tl.constexpr, BITS: tl.constexpr, HAS_BIAS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    m_ok = rm < M
    n_ok = rn < N
    # Where channel n's code sits inside a 32-byte run (see the layout in quant/lut.py).
    local = rn % 64
    high = local // 32
    byte = 2 * (local % 16) + (local % 32) // 16
    shift = 4 * high
    n_block = rn // 64
    runs = K // 4
    combos = tl.arange(0, 16)
    s0 = ((combos >> 0) & 1).to(tl.float32) * 2 - 1
    s1 = ((combos >> 1) & 1).to(tl.float32) * 2 - 1
    s2 = ((combos >> 2) & 1).to(tl.float32) * 2 - 1
    s3 = ((combos >> 3) & 1).to(tl.float32) * 2 - 1
    acc = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.float32)
    for g in range(0, K // GROUP):
        xsum = tl.full((BLOCK_M,), 0, dtype=tl.float32)
        for b in tl.static_range(BITS):
            part = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.float32)
            for r in range(g * (GROUP // 4), (g + 1) * (GROUP // 4)):
                xr = x_ptr + rm * stride_xm + 4 * r
                x0 = tl.load(xr + 0, mask=m_ok, other=0.0).to(tl.float32)
                x1 = tl.load(xr + 1, mask=m_ok, other=0.0).to(tl.float32)
                x2 = tl.load(xr + 2, mask=m_ok, other=0.0).to(tl.float32)
                x3 = tl.load(xr + 3, mask=m_ok, other=0.0).to(tl.float32)
                if b == 0:
                    xsum += x0 + x1 + x2 + x3
                table = (x0[:, None] * s0[None, :] + x1[:, None] * s1[None, :]
                         + x2[:, None] * s2[None, :] + x3[:, None] * s3[None, :])  # (BLOCK_M, 16)
                packed = tl.load(planes_ptr + ((n_block * runs + r) * BITS + b) * 32 + byte, mask=n_ok, other=0)
                code = (packed.to(tl.int32) >> shift) & 15  # (BLOCK_N,)
                index = tl.broadcast_to(code[None, :], (BLOCK_M, BLOCK_N))
                part += tl.gather(table, index, axis=1)
            alpha = tl.load(alpha_ptr + (g * BITS + b) * Np + rn, mask=n_ok, other=0.0).to(tl.float32)
            acc += part * alpha[None, :]
        offset = tl.load(offset_ptr + g * Np + rn, mask=n_ok, other=0.0).to(tl.float32)
        acc += xsum[:, None] * offset[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + rn, mask=n_ok, other=0.0)[None, :]
    tl.store(y_ptr + rm[:, None] * stride_ym + rn[None, :], acc, mask=m_ok[:, None] & n_ok[None, :])


def lut_linear_triton(
    x: torch.Tensor, planes: torch.Tensor, alpha: torch.Tensor, offset: torch.Tensor,
    bias: torch.Tensor | None, n: int, group: int, block: tuple[int, int] = (16, 64),
) -> torch.Tensor:
    """y (M, N) float32 for x (M, K), a LutLinear's planes and its scales
    (alpha (G, bits, Np), offset (G, Np), any float dtype)."""
    x = x.contiguous()
    m, k = x.shape
    bits = planes.shape[2]
    np_ = alpha.shape[2]
    y = torch.empty(m, n, dtype=torch.float32, device=x.device)
    bm, bn = block
    grid = (triton.cdiv(m, bm), triton.cdiv(n, bn))
    _lut_matmul_kernel[grid](
        x, planes, alpha, offset, bias if bias is not None else alpha, y,
        m, n, np_, k, x.stride(0), y.stride(0),
        GROUP=group, BITS=bits, HAS_BIAS=bias is not None, BLOCK_M=bm, BLOCK_N=bn,
    )
    return y
