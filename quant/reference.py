"""Plain PyTorch reference implementations of every quantized matmul in `quant/`.

These are the definitions the fast kernels are tested against: short, obviously
correct, slow. Nothing here is on a hot path except as the fallback when no compiled
kernel is available.

LLM.int8 (Dettmers et al., 2022), per call:
  1. outlier columns O = {k : max_m |x[m, k]| >= threshold} (none when threshold == 0);
  2. every row of X without O is quantized to int8: q = round(x · qmax / absmax_row);
  3. Y = (sx ⊗ sw) · (Xq · Wqᵀ)  +  X[:, O] · (sw · Wq[:, O])ᵀ  +  bias,
     where Wq, sw are the int8 weights and their per-output-channel scales. The outlier
     columns' weights are dequantized from int8 at run time, as bitsandbytes does, so a
     float copy of the weights never exists.

LUT-GEMM (Park et al., 2022) in binary-coding form (BCQ): for group g of `group_size`
input features, W[n, k] ≈ Σ_b alpha[g, b, n] · B_b[n, k] + offset[g, n], B_b ∈ {−1, +1}.
For every run of 4 activations a 16-entry table holds all signed sums
T[c] = Σ_j s_j(c) x_j (s_j(c) = +1 where bit j of c is set, else −1); bit-plane b of 4
weights is a 4-bit code c, so Σ_j B_b[n, k+j] x[k+j] = T[c] is one lookup.
"""

from __future__ import annotations

import torch

# ------------------------------------------------------------------------ int8


def quantize_rows(x: torch.Tensor, keep: torch.Tensor | None, qmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Vector-wise quantization of the rows of x (M, K) to integers in [-qmax, qmax].

    Columns where `keep` is False become 0. Returns (q as float32 integers, scale (M,)).
    """
    x = x.float()
    if keep is not None:
        x = x * keep.to(x.dtype)
    amax = x.abs().amax(dim=1)
    inv = torch.where(amax > 0, qmax / amax, torch.zeros_like(amax))
    q = torch.round(x * inv[:, None])
    return q, amax / qmax


def quantize_weight_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric int8: (w_int8 (N, K), scale (N,)) with w ≈ w_int8 · scale."""
    w = weight.detach().float()
    amax = w.abs().amax(dim=1)
    inv = torch.where(amax > 0, 127.0 / amax, torch.zeros_like(amax))
    w_int8 = torch.round(w * inv[:, None]).clamp_(-127, 127).to(torch.int8)
    return w_int8, amax / 127.0


def outlier_columns(x: torch.Tensor, threshold: float) -> torch.Tensor | None:
    """Boolean (K,) mask of LLM.int8 outlier columns, or None when the threshold is 0."""
    if threshold <= 0:
        return None
    return x.abs().amax(dim=0) >= threshold


def int8_linear(
    x: torch.Tensor,
    w_int8: torch.Tensor,
    w_scale: torch.Tensor,
    bias: torch.Tensor | None,
    threshold: float,
    qmax: int = 127,
) -> torch.Tensor:
    """LLM.int8 forward for x (M, K) and int8 weights (N, K); returns float32 (M, N)."""
    x = x.float()
    outliers = outlier_columns(x, threshold)
    keep = None if outliers is None else ~outliers
    q, sx = quantize_rows(x, keep, qmax)
    # Integer products are exact in float64 (|sums| < 2^53).
    acc = (q.double() @ w_int8.double().t()).float()
    y = acc * (sx[:, None] * w_scale[None, :])
    if outliers is not None and bool(outliers.any()):
        w_cols = w_int8[:, outliers].float() * w_scale[:, None]
        y = y + x[:, outliers] @ w_cols.t()
    if bias is not None:
        y = y + bias.float()
    return y


# ------------------------------------------------------------------------ BCQ / LUT


def bcq_dequantize(signs: torch.Tensor, alpha: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """W (N, K) from signs (bits, N, K) in {−1, +1}, alpha (G, bits, N), offset (G, N)."""
    bits, n, k = signs.shape
    groups = alpha.shape[0]
    g = k // groups
    s = signs.float().reshape(bits, n, groups, g)  # (b, N, G, g)
    a = alpha.float().permute(1, 2, 0)[..., None]  # (b, N, G, 1)
    w = (s * a).sum(dim=0) + offset.float().t()[..., None]  # (N, G, g)
    return w.reshape(n, k)


def lut_tables(x: torch.Tensor) -> torch.Tensor:
    """All 16 signed sums of each run of 4 activations: x (M, K) -> (M, K/4, 16) float32."""
    m, k = x.shape
    codes = torch.arange(16, device=x.device)
    signs = ((codes[:, None] >> torch.arange(4, device=x.device)[None, :]) & 1).float() * 2 - 1  # (16, 4)
    return x.float().reshape(m, k // 4, 4) @ signs.t()


def lut_linear(
    x: torch.Tensor,
    codes: torch.Tensor,
    alpha: torch.Tensor,
    offset: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """LUT-GEMM by table lookups with exact float tables.

    codes (bits, N, K/4) int: the 4-bit code of each bit-plane for each run of 4 inputs.
    alpha (G, bits, N), offset (G, N). Returns float32 (M, N).
    """
    x = x.float()
    m, k = x.shape
    bits, n, chunks = codes.shape
    groups = alpha.shape[0]
    tables = lut_tables(x)  # (M, C, 16)
    y = torch.zeros(m, n, device=x.device)
    for b in range(bits):
        # looked[m, n, c] = tables[m, c, codes[b, n, c]]
        index = codes[b].long().t()[None].expand(m, chunks, n)  # (M, C, N)
        looked = torch.gather(tables, 2, index)  # (M, C, N)
        per_group = looked.reshape(m, groups, chunks // groups, n).sum(dim=2)  # (M, G, N)
        y += (per_group * alpha[:, b, :].float()[None]).sum(dim=1)
    group_sums = x.reshape(m, groups, k // groups).sum(dim=2)  # (M, G)
    y += group_sums @ offset.float()
    if bias is not None:
        y = y + bias.float()
    return y
