"""Triton int8 matmul for LLM.int8 on CUDA: int8 × int8 -> int32 tiles, dequantized in the epilogue.

Activation rows are quantized with torch (absmax per row, 8-bit, outlier columns zeroed);
the kernel multiplies them by the int8 weights kept in the layer's blocked layout
[N/16][K/4][16][4] (weight (n, k) at ((n//16)·K4 + k//4)·64 + (n%16)·4 + k%4) and
writes y = acc · sx[m] · sw[n] + bias[n]. On tensor-core GPUs `tl.dot` on int8 runs the
integer MMA path. The fp outlier columns are added by the caller-side wrapper here with
one small torch matmul against weight columns dequantized from int8.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from quant import reference
from quant.int8_layout import packed_columns


@triton.jit
def _int8_matmul_kernel(
    xq_ptr, w_ptr, sx_ptr, sw_ptr, bias_ptr, y_ptr,
    M, N, K, K4, stride_xm, stride_ym,
    HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n_base = (rn // 16) * (K4 * 64) + (rn % 16) * 4  # (BLOCK_N,)
    acc = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.int32)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        a = tl.load(xq_ptr + rm[:, None] * stride_xm + rk[None, :], mask=(rm[:, None] < M) & (rk[None, :] < K), other=0)
        w_off = n_base[None, :] + (rk[:, None] // 4) * 64 + (rk[:, None] % 4)  # (BLOCK_K, BLOCK_N)
        b = tl.load(w_ptr + w_off, mask=(rn[None, :] < N) & (rk[:, None] < K), other=0)
        acc = tl.dot(a, b, acc, out_dtype=tl.int32)
    sx = tl.load(sx_ptr + rm, mask=rm < M, other=0.0)
    sw = tl.load(sw_ptr + rn, mask=rn < N, other=0.0)
    y = acc.to(tl.float32) * (sx[:, None] * sw[None, :])
    if HAS_BIAS:
        y += tl.load(bias_ptr + rn, mask=rn < N, other=0.0)[None, :]
    tl.store(y_ptr + rm[:, None] * stride_ym + rn[None, :], y, mask=(rm[:, None] < M) & (rn[None, :] < N))


def int8_matmul_triton(
    xq: torch.Tensor, sx: torch.Tensor, w_packed: torch.Tensor, w_scale: torch.Tensor,
    bias: torch.Tensor | None, n: int, block: tuple[int, int, int] = (64, 64, 64),
) -> torch.Tensor:
    """y (M, N) float32 from int8 rows xq (M, K) with scales sx (M,) and packed int8 weights."""
    m, k = xq.shape
    k4 = w_packed.shape[1]
    y = torch.empty(m, n, dtype=torch.float32, device=xq.device)
    bm, bn, bk = block
    grid = (triton.cdiv(m, bm), triton.cdiv(n, bn))
    _int8_matmul_kernel[grid](
        xq, w_packed, sx, w_scale, bias if bias is not None else w_scale, y,
        m, n, k, k4, xq.stride(0), y.stride(0),
        HAS_BIAS=bias is not None, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
    )
    return y


def int8_linear_triton(
    x: torch.Tensor, w_packed: torch.Tensor, w_scale: torch.Tensor, bias: torch.Tensor | None,
    n: int, threshold: float, block: tuple[int, int, int] = (64, 64, 64),
) -> torch.Tensor:
    """The full LLM.int8 forward for x (M, K) float32: int8 part in Triton, outliers in torch."""
    x = x.float().contiguous()
    outliers = reference.outlier_columns(x, threshold)
    has_outliers = outliers is not None and bool(outliers.any())
    q, sx = reference.quantize_rows(x, ~outliers if has_outliers else None, 127)
    y = int8_matmul_triton(q.to(torch.int8).contiguous(), sx.contiguous(), w_packed, w_scale, bias, n, block)
    if has_outliers:
        columns = outliers.nonzero().flatten()
        w_cols = packed_columns(w_packed, columns, n).float() * w_scale[:, None]
        y.addmm_(x[:, columns], w_cols.t())
    return y
