"""The int8 weights' blocked layout [N/16][K/4][16][4]: the order the x86 dot-product instructions consume
(kernels/cpu/int8_gemm.cpp), which the Triton kernel reads too. Packing, unpacking, and reading columns
straight from it (the outlier columns of LLM.int8), shared by Int8Linear and the kernels."""

from __future__ import annotations

import torch


def pack_int8(w_int8: torch.Tensor) -> torch.Tensor:
    """(N, K) int8 -> blocked (Np/16, Kp/4, 16, 4), zero-padded to multiples of 16 and 4."""
    n, k = w_int8.shape
    np_, kp = -(-n // 16) * 16, -(-k // 4) * 4
    padded = torch.zeros(np_, kp, dtype=torch.int8, device=w_int8.device)
    padded[:n, :k] = w_int8
    return padded.reshape(np_ // 16, 16, kp // 4, 4).permute(0, 2, 1, 3).contiguous()


def unpack_int8(packed: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """Inverse of pack_int8: (N, K) int8."""
    nb, k4 = packed.shape[:2]
    return packed.permute(0, 2, 1, 3).reshape(nb * 16, k4 * 4)[:n, :k]


def packed_columns(packed: torch.Tensor, columns: torch.Tensor, n: int) -> torch.Tensor:
    """Int8 weight columns `columns` (indices into K) as an (N, len) tensor, straight from the blocked layout."""
    blocks = packed[:, columns // 4].permute(0, 2, 1, 3)  # (Np/16, 16, len, 4)
    blocks = blocks.reshape(-1, columns.numel(), 4)  # (Np, len, 4)
    return blocks[:, torch.arange(columns.numel(), device=columns.device), columns % 4][:n]  # (N, len)
