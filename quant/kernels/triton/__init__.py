"""Triton kernels for CUDA: the int8 matmul of LLM.int8 and the LUT-GEMM matmul.

They are plain `@triton.jit` kernels with no GPU-only constructs beyond what Triton
itself needs, so the same code runs on CPU tensors under `TRITON_INTERPRET=1` (set it
before triton is imported) for the tests. Import these modules only when needed:
importing triton costs time and the CPU paths never need it.
"""
